/* Reading a .bdc: every size is checked before it is used, every count is
 * capped by the bytes that could hold it, and every failure names the check
 * and the values found. The checks are listed in FORMAT.md. */
#include "format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define FAIL(name, ...) bd_format_fail("ckpt", name, __VA_ARGS__)

/* ---- header -------------------------------------------------------------- */

static bd_status check_magic(const uint8_t *p, const char *name)
{
    if (memcmp(p, BDC_MAGIC, 4) == 0)
        return BD_OK;
    char shown[5];
    for (int i = 0; i < 4; i++)
        shown[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.';
    shown[4] = '\0';
    return FAIL(name, "bad magic (found %02x %02x %02x %02x '%s', expected"
                " 'BDCK')", p[0], p[1], p[2], p[3], shown);
}

static bd_status check_version(const bdc_header *h, const char *name)
{
    if (h->major > BDC_MAJOR)
        return FAIL(name, "format version %u.%u is newer than this reader"
                    " (reads %d.x)", h->major, h->minor, BDC_MAJOR);
    if (h->major < BDC_MAJOR)
        return FAIL(name, "format version %u.%u is older than this reader"
                    " (reads %d.x)", h->major, h->minor, BDC_MAJOR);
    return BD_OK;
}

/* Sizes and counts of the header, each against its cap and the file. */
static bd_status check_sizes(const bdc_header *h, uint64_t file_size,
                             const char *name)
{
    if (h->header_size < BDC_HEADER_SIZE || h->header_size > BDC_HEADER_MAX)
        return FAIL(name, "header_size out of range (found %u, expected %u to"
                    " %u)", h->header_size, BDC_HEADER_SIZE, BDC_HEADER_MAX);
    uint32_t a = h->alignment;
    if (a < BDC_ALIGN || a > BDC_ALIGN_MAX || (a & (a - 1)))
        return FAIL(name, "bad alignment (found %u, expected a power of two"
                    " from %u to %u)", a, BDC_ALIGN, BDC_ALIGN_MAX);
    if (h->index_size > BDC_INDEX_MAX)
        return FAIL(name, "index_size above the cap (found %llu, at most %llu)",
                    (unsigned long long)h->index_size, BDC_INDEX_MAX);
    if (h->n_kv > h->index_size / BDC_KV_MIN)
        return FAIL(name, "n_kv too large for the index (found %u, an index"
                    " of %llu bytes holds at most %llu)", h->n_kv,
                    (unsigned long long)h->index_size,
                    (unsigned long long)(h->index_size / BDC_KV_MIN));
    if (h->n_tensors > h->index_size / BDC_REC_MIN)
        return FAIL(name, "n_tensors too large for the index (found %llu, an"
                    " index of %llu bytes holds at most %llu)",
                    (unsigned long long)h->n_tensors,
                    (unsigned long long)h->index_size,
                    (unsigned long long)(h->index_size / BDC_REC_MIN));
    uint64_t meta_end = h->header_size + h->index_size;
    if (meta_end > file_size)
        return FAIL(name, "file truncated inside the index (header_size +"
                    " index_size = %llu, file has %llu bytes)",
                    (unsigned long long)meta_end, (unsigned long long)file_size);
    uint64_t want = (meta_end + a - 1) & ~(uint64_t)(a - 1);
    if (h->data_offset != want)
        return FAIL(name, "bad data_offset (found %llu, expected %llu: header"
                    " and index aligned to %u)", (unsigned long long)h->data_offset,
                    (unsigned long long)want, a);
    if (h->data_offset > file_size)
        return FAIL(name, "file truncated inside the index padding (data_offset"
                    " %llu, file has %llu bytes)",
                    (unsigned long long)h->data_offset,
                    (unsigned long long)file_size);
    if (h->data_size != file_size - h->data_offset)
        return FAIL(name, "file size mismatch (data_offset %llu + data_size %llu,"
                    " file has %llu bytes)", (unsigned long long)h->data_offset,
                    (unsigned long long)h->data_size,
                    (unsigned long long)file_size);
    return BD_OK;
}

static bd_status check_header(const uint8_t *meta, size_t meta_len,
                              uint64_t file_size, const char *name,
                              bdc_header *h)
{
    if (file_size < BDC_HEADER_SIZE || meta_len < BDC_HEADER_SIZE)
        return FAIL(name, "file truncated inside the header (found %llu bytes,"
                    " the header needs %u)", (unsigned long long)file_size,
                    BDC_HEADER_SIZE);
    BD_TRY(check_magic(meta, name));
    bdc_header_decode(meta, h);
    BD_TRY(check_version(h, name));
    BD_TRY(check_sizes(h, file_size, name));
    if (meta_len < h->data_offset)
        return FAIL(name, "header and index truncated (found %zu bytes, expected"
                    " %llu)", meta_len, (unsigned long long)h->data_offset);
    uint32_t crc = bdc_meta_crc(meta, h->data_offset);
    if (crc != h->index_crc)
        return FAIL(name, "index crc32c mismatch (computed 0x%08x, header says"
                    " 0x%08x)", crc, h->index_crc);
    uint64_t meta_end = h->header_size + h->index_size;
    return bdc_zero_padding(meta + meta_end, h->data_offset - meta_end, name,
                            "after the index", meta_end);
}

/* ---- index cursor -------------------------------------------------------- */

typedef struct cursor {
    const uint8_t *p;     /* the index */
    uint64_t       len, at;
    const char    *name;  /* the file, for messages */
    char           what[300];  /* the record being read */
} cursor;

static bd_status need(cursor *c, uint64_t n, const char *field)
{
    if (n <= c->len - c->at)
        return BD_OK;
    return FAIL(c->name, "index ends inside %s of %s (needs %llu bytes at index"
                " offset %llu, %llu left)", field, c->what, (unsigned long long)n,
                (unsigned long long)c->at, (unsigned long long)(c->len - c->at));
}

static bd_status take(cursor *c, uint64_t n, const char *field,
                      const uint8_t **out)
{
    BD_TRY(need(c, n, field));
    *out = c->p + c->at;
    c->at += n;
    return BD_OK;
}

static bd_status take_u8(cursor *c, const char *field, uint8_t *v)
{
    const uint8_t *p;
    BD_TRY(take(c, 1, field, &p));
    *v = *p;
    return BD_OK;
}

static bd_status take_u64(cursor *c, const char *field, uint64_t *v)
{
    const uint8_t *p;
    BD_TRY(take(c, 8, field, &p));
    *v = bd_le64(p);
    return BD_OK;
}

/* A key or tensor name into out[256], strictly after `prev` (sorted, so no
 * duplicates). */
static bd_status take_name(cursor *c, const char *kind, const char *prev,
                           char out[BD_CKPT_NAME_MAX + 1])
{
    const uint8_t *p;
    BD_TRY(take(c, 2, "name length", &p));
    uint16_t len = bd_le16(p);
    BD_TRY(take(c, len, "name", &p));
    char why[96];
    if (!bdc_name_ok((const char *)p, len, why, sizeof why))
        return FAIL(c->name, "%s: bad %s name '%.*s' (%s)", c->what, kind,
                    len > BD_CKPT_NAME_MAX ? BD_CKPT_NAME_MAX : (int)len, p, why);
    memcpy(out, p, len);
    out[len] = '\0';
    int order = prev ? strcmp(out, prev) : 1;
    if (order == 0)
        return FAIL(c->name, "%s: duplicate %s name '%s'", c->what, kind, out);
    if (order < 0)
        return FAIL(c->name, "%s: %s names out of order ('%s' after '%s')",
                    c->what, kind, out, prev);
    return BD_OK;
}

/* ---- key/values ---------------------------------------------------------- */

static bd_status take_kv(cursor *c, bd_ckpt *ck, const char *prev,
                         char key[BD_CKPT_NAME_MAX + 1])
{
    BD_TRY(take_name(c, "key", prev, key));
    snprintf(c->what, sizeof c->what, "kv '%s'", key);
    uint8_t type;
    uint64_t v;
    const uint8_t *p;
    BD_TRY(take_u8(c, "type", &type));
    switch (type) {
    case BD_CKPT_U64:
    case BD_CKPT_I64:
    case BD_CKPT_F64:
        BD_TRY(take_u64(c, "value", &v));
        if (type == BD_CKPT_U64)
            return bd_ckpt_set_u64(ck, key, v);
        if (type == BD_CKPT_I64)
            return bd_ckpt_set_i64(ck, key, (int64_t)v);
        double f;
        memcpy(&f, &v, 8);
        return bd_ckpt_set_f64(ck, key, f);
    case BD_CKPT_STR:
        BD_TRY(take_u64(c, "string length", &v));
        BD_TRY(take(c, v, "string", &p));
        if (memchr(p, 0, v))
            return FAIL(c->name, "%s: string holds a NUL byte (at %zu of %llu)",
                        c->what, (size_t)((const uint8_t *)memchr(p, 0, v) - p),
                        (unsigned long long)v);
        return bdc_set_block(ck, key, BD_CKPT_STR, p, v);
    case BD_CKPT_ARR_I64:
    case BD_CKPT_ARR_F64:
        BD_TRY(take_u64(c, "array count", &v));
        if (v > (c->len - c->at) / 8)
            return FAIL(c->name, "%s: array count too large (found %llu, the"
                        " %llu bytes left in the index hold at most %llu)",
                        c->what, (unsigned long long)v,
                        (unsigned long long)(c->len - c->at),
                        (unsigned long long)((c->len - c->at) / 8));
        BD_TRY(take(c, v * 8, "array", &p));
        return bdc_set_block(ck, key, (bd_ckpt_type)type, p, v);
    default:
        return FAIL(c->name, "%s: unknown kv type (found %u, expected 1 to 6)",
                    c->what, type);
    }
}

/* ---- tensor records ------------------------------------------------------ */

typedef struct record {
    uint8_t  dtype, ndim, codec, filter, level, reserved;
    int64_t  dims[BD_CKPT_MAX_DIMS];
    uint64_t offset, stored_size, raw_size;
    uint32_t crc;
} record;

static bd_status take_record(cursor *c, record *r)
{
    const uint8_t *p;
    BD_TRY(take_u8(c, "dtype", &r->dtype));
    if (!bdc_elem_size(r->dtype))
        return FAIL(c->name, "%s: unknown dtype (found %u, expected %d f32 or"
                    " %d u8)", c->what, r->dtype, BD_CKPT_F32, BD_CKPT_U8);
    BD_TRY(take_u8(c, "ndim", &r->ndim));
    if (r->ndim > BD_CKPT_MAX_DIMS)
        return FAIL(c->name, "%s: too many dims (found ndim %u, at most %d)",
                    c->what, r->ndim, BD_CKPT_MAX_DIMS);
    for (int d = 0; d < r->ndim; d++) {
        BD_TRY(take(c, 8, "dims", &p));
        r->dims[d] = (int64_t)bd_le64(p);
        if (r->dims[d] < 0)
            return FAIL(c->name, "%s: negative dim (found dim %d = %lld)",
                        c->what, d, (long long)r->dims[d]);
    }
    BD_TRY(take(c, 4, "codec", &p));
    r->codec = p[0];
    r->filter = p[1];
    r->level = p[2];
    r->reserved = p[3];
    BD_TRY(take(c, 28, "sizes", &p));
    r->offset = bd_le64(p);
    r->stored_size = bd_le64(p + 8);
    r->raw_size = bd_le64(p + 16);
    r->crc = bd_le32(p + 24);
    return BD_OK;
}

/* The record's own fields: codec, filter, reserved, dims against raw_size. */
static bd_status check_record(const cursor *c, const record *r)
{
    if (r->codec > BDC_CODEC_ZSTD)
        return FAIL(c->name, "%s: unknown codec (found %u, expected 0 raw or 1"
                    " zstd)", c->what, r->codec);
    if (r->filter > BDC_FILTER_SHUFFLE)
        return FAIL(c->name, "%s: unknown filter (found %u, expected 0 none or"
                    " 1 byte shuffle)", c->what, r->filter);
    if (r->codec == BDC_CODEC_RAW && r->filter != BDC_FILTER_NONE)
        return FAIL(c->name, "%s: filter %u on a raw blob (expected 0)",
                    c->what, r->filter);
    if (r->reserved)
        return FAIL(c->name, "%s: reserved byte is not zero (found 0x%02x)",
                    c->what, r->reserved);
    uint64_t nbytes;
    char dims[200];
    bdc_dims_str(r->ndim, r->dims, dims, sizeof dims);
    if (!bdc_nbytes(r->dtype, r->ndim, r->dims, &nbytes))
        return FAIL(c->name, "%s: dims overflow (%s x %zu bytes exceeds 2^64)",
                    c->what, dims, bdc_elem_size(r->dtype));
    if (nbytes != r->raw_size)
        return FAIL(c->name, "%s: raw_size does not match dims (found %llu,"
                    " expected %s x %zu = %llu)", c->what,
                    (unsigned long long)r->raw_size, dims,
                    bdc_elem_size(r->dtype), (unsigned long long)nbytes);
    if (r->raw_size > BDC_RAW_MAX)
        return FAIL(c->name, "%s: tensor above the cap of %llu raw bytes (found"
                    " %llu)", c->what, BDC_RAW_MAX, (unsigned long long)r->raw_size);
    if (r->codec == BDC_CODEC_RAW && r->stored_size != r->raw_size)
        return FAIL(c->name, "%s: raw blob size mismatch (stored_size %llu,"
                    " raw_size %llu)", c->what, (unsigned long long)r->stored_size,
                    (unsigned long long)r->raw_size);
    if (r->codec == BDC_CODEC_ZSTD
        && r->stored_size > ZSTD_COMPRESSBOUND(r->raw_size))
        return FAIL(c->name, "%s: zstd blob larger than any frame of its raw"
                    " size (stored_size %llu, at most %llu for raw_size %llu)",
                    c->what, (unsigned long long)r->stored_size,
                    (unsigned long long)ZSTD_COMPRESSBOUND(r->raw_size),
                    (unsigned long long)r->raw_size);
    return BD_OK;
}

/* The blob at r->offset must start at the running aligned cursor *end and lie
 * inside the data section; *end moves past it. */
static bd_status check_placement(const cursor *c, const record *r,
                                 const bdc_header *h, uint64_t *end)
{
    uint64_t a = h->alignment;
    uint64_t want = (*end + a - 1) & ~(a - 1);
    if (r->offset < *end)
        return FAIL(c->name, "%s: overlapping offsets (offset %llu, the previous"
                    " blob ends at %llu)", c->what, (unsigned long long)r->offset,
                    (unsigned long long)*end);
    if (r->offset != want)
        return FAIL(c->name, "%s: %s (offset %llu, expected %llu)", c->what,
                    r->offset % a ? "misaligned offset" : "gap before the blob",
                    (unsigned long long)r->offset, (unsigned long long)want);
    if (r->offset > h->data_size || r->stored_size > h->data_size - r->offset)
        return FAIL(c->name, "%s: blob past the end of the data section (offset"
                    " %llu + stored_size %llu, data_size %llu)", c->what,
                    (unsigned long long)r->offset,
                    (unsigned long long)r->stored_size,
                    (unsigned long long)h->data_size);
    *end = r->offset + r->stored_size;
    return BD_OK;
}

static bd_status add_record(bd_ckpt *ck, const char *tname, const record *r)
{
    bd_ckpt_tensor *t;
    BD_TRY(bdc_tensor_new(ck, tname, (bd_ckpt_dtype)r->dtype, r->ndim, r->dims,
                          &t));
    t->stored = (bd_ckpt_storage){
        .codec = r->codec, .filter = r->filter, .level = r->level,
        .offset = r->offset, .stored_size = r->stored_size, .crc32c = r->crc,
    };
    return BD_OK;
}

static bd_status parse_index(cursor *c, const bdc_header *h, bd_ckpt *ck)
{
    char name[2][BD_CKPT_NAME_MAX + 1];
    for (uint32_t i = 0; i < h->n_kv; i++) {
        snprintf(c->what, sizeof c->what, "kv %u", i);
        BD_TRY(take_kv(c, ck, i ? name[(i - 1) & 1] : NULL, name[i & 1]));
    }
    uint64_t end = 0, raw_total = 0;
    for (uint64_t i = 0; i < h->n_tensors; i++) {
        record r;
        snprintf(c->what, sizeof c->what, "tensor record %llu",
                 (unsigned long long)i);
        BD_TRY(take_name(c, "tensor", i ? name[(i - 1) & 1] : NULL, name[i & 1]));
        snprintf(c->what, sizeof c->what, "tensor '%s'", name[i & 1]);
        BD_TRY(take_record(c, &r));
        BD_TRY(check_record(c, &r));
        BD_TRY(check_placement(c, &r, h, &end));
        raw_total += r.raw_size;
        if (raw_total > BDC_RAW_MAX)
            return FAIL(c->name, "%s: tensors above the cap of %llu raw bytes in"
                        " all (found %llu so far)", c->what, BDC_RAW_MAX,
                        (unsigned long long)raw_total);
        BD_TRY(add_record(ck, name[i & 1], &r));
    }
    if (c->at != c->len)
        return FAIL(c->name, "index has trailing bytes (records end at %llu,"
                    " index_size %llu)", (unsigned long long)c->at,
                    (unsigned long long)c->len);
    if (end != h->data_size)
        return FAIL(c->name, "data section has trailing bytes (blobs end at"
                    " %llu, data_size %llu)", (unsigned long long)end,
                    (unsigned long long)h->data_size);
    return BD_OK;
}

bd_status bdc_parse(const uint8_t *meta, size_t meta_len, uint64_t file_size,
                    const char *name, bdc_header *hdr, bd_ckpt **out)
{
    BD_TRY(check_header(meta, meta_len, file_size, name, hdr));
    bd_ckpt *ck = bd_ckpt_new();
    if (!ck)
        return BD_E_NOMEM;
    cursor c = {.p = meta + hdr->header_size, .len = hdr->index_size,
                .name = name};
    bd_status s = parse_index(&c, hdr, ck);
    if (s != BD_OK) {
        bd_ckpt_free(ck);
        return s;
    }
    *out = ck;
    return BD_OK;
}

/* ---- whole files --------------------------------------------------------- */

bd_status bd_ckpt_load_mem(const void *bytes, size_t len, const char *name,
                           bd_ckpt **out)
{
    bdc_header h;
    bd_ckpt *ck;
    BD_TRY(bdc_parse(bytes, len, len, name, &h, &ck));
    const uint8_t *data = (const uint8_t *)bytes + h.data_offset;
    uint64_t end = 0;
    bd_status s = BD_OK;
    for (size_t i = 0; i < ck->n_tensors && s == BD_OK; i++) {
        bd_ckpt_tensor *t = &ck->tensors[i];
        char where[400];
        snprintf(where, sizeof where, "ckpt '%s': tensor '%s'", name, t->name);
        s = bdc_zero_padding(data + end, t->stored.offset - end, name,
                             "between blobs", h.data_offset + end);
        if (s == BD_OK)
            s = bdc_blob_decode(t, data + t->stored.offset, where);
        end = t->stored.offset + t->stored.stored_size;
    }
    if (s != BD_OK) {
        bd_ckpt_free(ck);
        return s;
    }
    *out = ck;
    return BD_OK;
}

bd_status bd_ckpt_load(const char *path, bd_ckpt **out)
{
    uint8_t *bytes;
    size_t len;
    BD_TRY(bd_read_file(path, &bytes, &len));
    bd_status s = bd_ckpt_load_mem(bytes, len, path, out);
    free(bytes);
    return s;
}

bd_status bd_ckpt_verify(const char *path)
{
    bd_ckpt *ck;
    BD_TRY(bd_ckpt_load(path, &ck));
    bd_ckpt_free(ck);
    return BD_OK;
}
