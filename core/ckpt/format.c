/* Byte buffers, the .bdc header and the messages of format failures. */
#include "format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- byte buffers -------------------------------------------------------- */

static bool reserve(bd_buf *b, size_t n)
{
    if (b->failed)
        return false;
    if (n <= b->cap - b->len)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *grown = realloc(b->data, cap);
    if (!grown) {
        b->failed = true;
        return false;
    }
    b->data = grown;
    b->cap = cap;
    return true;
}

void bd_buf_put(bd_buf *b, const void *p, size_t n)
{
    if (n && reserve(b, n)) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
}

void bd_buf_zeros(bd_buf *b, size_t n)
{
    if (n && reserve(b, n)) {
        memset(b->data + b->len, 0, n);
        b->len += n;
    }
}

static void put_le(bd_buf *b, uint64_t v, int bytes)
{
    uint8_t p[8];
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    bd_buf_put(b, p, (size_t)bytes);
}

void bd_buf_u8(bd_buf *b, uint8_t v)   { put_le(b, v, 1); }
void bd_buf_u16(bd_buf *b, uint16_t v) { put_le(b, v, 2); }
void bd_buf_u32(bd_buf *b, uint32_t v) { put_le(b, v, 4); }
void bd_buf_u64(bd_buf *b, uint64_t v) { put_le(b, v, 8); }

void bd_buf_free(bd_buf *b)
{
    free(b->data);
    *b = (bd_buf){0};
}

/* ---- header -------------------------------------------------------------- */

void bdc_header_decode(const uint8_t *p, bdc_header *h)
{
    h->major = bd_le16(p + 4);
    h->minor = bd_le16(p + 6);
    h->header_size = bd_le32(p + 8);
    h->flags = bd_le32(p + 12);
    h->alignment = bd_le32(p + 16);
    h->n_kv = bd_le32(p + 20);
    h->n_tensors = bd_le64(p + 24);
    h->index_size = bd_le64(p + 32);
    h->data_offset = bd_le64(p + 40);
    h->data_size = bd_le64(p + 48);
    h->index_crc = bd_le32(p + 56);
}

void bdc_header_encode(const bdc_header *h, uint8_t p[BDC_HEADER_SIZE])
{
    bd_buf b = {.data = p, .cap = BDC_HEADER_SIZE};
    bd_buf_put(&b, BDC_MAGIC, 4);
    bd_buf_u16(&b, h->major);
    bd_buf_u16(&b, h->minor);
    bd_buf_u32(&b, h->header_size);
    bd_buf_u32(&b, h->flags);
    bd_buf_u32(&b, h->alignment);
    bd_buf_u32(&b, h->n_kv);
    bd_buf_u64(&b, h->n_tensors);
    bd_buf_u64(&b, h->index_size);
    bd_buf_u64(&b, h->data_offset);
    bd_buf_u64(&b, h->data_size);
    bd_buf_u32(&b, h->index_crc);
    bd_buf_u32(&b, 0);
}

uint32_t bdc_meta_crc(const uint8_t *meta, size_t len)
{
    static const uint8_t zero[4];
    uint32_t crc = bd_crc32c(0, meta, 56);
    crc = bd_crc32c(crc, zero, 4);
    return bd_crc32c(crc, meta + 60, len - 60);
}

/* ---- failures ------------------------------------------------------------ */

bd_status bd_format_fail(const char *kind, const char *name, const char *fmt,
                         ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bd_fail(BD_E_FORMAT, "%s '%s': %s", kind, name, msg);
}

bd_status bdc_zero_padding(const uint8_t *p, size_t n, const char *name,
                           const char *what, uint64_t at)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return bd_format_fail("ckpt", name, "padding %s is not zero (found"
                                  " 0x%02x at file offset %llu)", what, p[i],
                                  (unsigned long long)(at + i));
    return BD_OK;
}
