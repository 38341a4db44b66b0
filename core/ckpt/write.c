/* Writing a .bdc: each tensor becomes a raw or zstd blob, the index records
 * where, and the file goes to disk atomically. */
#include "format.h"

#include <stdlib.h>
#include <string.h>

/* One tensor's blob; bytes NULL means the raw tensor data itself. */
typedef struct blob {
    uint8_t *bytes;
    size_t   len;
    int      codec, filter, level;
    uint32_t crc;
} blob;

bd_ckpt_save_opts bd_ckpt_save_defaults(void)
{
    return (bd_ckpt_save_opts){.level = 3};
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

/* Raw below 4 KiB or at level 0; otherwise the smaller of the plain and (for
 * f32) byte-shuffled zstd frames, unless raw is smaller still. */
static bd_status choose_blob(const bd_ckpt_tensor *t, int level, blob *b)
{
    *b = (blob){.len = t->nbytes, .crc = bd_crc32c(0, t->data, t->nbytes)};
    if (level == 0 || t->nbytes < BDC_RAW_BELOW)
        return BD_OK;
    uint8_t *plain, *shuffled = NULL;
    size_t plain_len, shuffled_len = SIZE_MAX;
    BD_TRY(bdc_blob_encode(t, BDC_CODEC_ZSTD, BDC_FILTER_NONE, level, &plain,
                           &plain_len));
    if (t->dtype == BD_CKPT_F32) {
        bd_status s = bdc_blob_encode(t, BDC_CODEC_ZSTD, BDC_FILTER_SHUFFLE,
                                      level, &shuffled, &shuffled_len);
        if (s != BD_OK) {
            free(plain);
            return s;
        }
    }
    bool shuffle = shuffled_len < plain_len;
    uint8_t *best = shuffle ? shuffled : plain;
    size_t best_len = shuffle ? shuffled_len : plain_len;
    free(shuffle ? plain : shuffled);
    if (best_len >= t->nbytes) {
        free(best);
        return BD_OK;
    }
    b->bytes = best;
    b->len = best_len;
    b->codec = BDC_CODEC_ZSTD;
    b->filter = shuffle ? BDC_FILTER_SHUFFLE : BDC_FILTER_NONE;
    b->level = level;
    return BD_OK;
}

static void put_name(bd_buf *b, const char *name)
{
    size_t n = strlen(name);
    bd_buf_u16(b, (uint16_t)n);
    bd_buf_put(b, name, n);
}

static void put_kv(bd_buf *b, const bd_ckpt_kv *kv)
{
    put_name(b, kv->key);
    bd_buf_u8(b, (uint8_t)kv->type);
    switch (kv->type) {
    case BD_CKPT_U64:
    case BD_CKPT_I64:
    case BD_CKPT_F64: {
        uint64_t bits;
        memcpy(&bits, &kv->v, 8);
        bd_buf_u64(b, bits);
        break;
    }
    case BD_CKPT_STR:
        bd_buf_u64(b, kv->n);
        bd_buf_put(b, kv->v.str, kv->n);
        break;
    case BD_CKPT_ARR_I64:
    case BD_CKPT_ARR_F64:
        bd_buf_u64(b, kv->n);
        for (uint64_t i = 0; i < kv->n; i++) {
            uint64_t bits;
            memcpy(&bits, (const uint8_t *)kv->v.i64s + 8 * i, 8);
            bd_buf_u64(b, bits);
        }
        break;
    }
}

static void put_record(bd_buf *b, const bd_ckpt_tensor *t, const blob *bl,
                       uint64_t offset)
{
    put_name(b, t->name);
    bd_buf_u8(b, (uint8_t)t->dtype);
    bd_buf_u8(b, (uint8_t)t->ndim);
    for (int d = 0; d < t->ndim; d++)
        bd_buf_u64(b, (uint64_t)t->dims[d]);
    bd_buf_u8(b, (uint8_t)bl->codec);
    bd_buf_u8(b, (uint8_t)bl->filter);
    bd_buf_u8(b, (uint8_t)bl->level);
    bd_buf_u8(b, 0);
    bd_buf_u64(b, offset);
    bd_buf_u64(b, bl->len);
    bd_buf_u64(b, t->nbytes);
    bd_buf_u32(b, bl->crc);
}

/* Header, index, padding, then each blob at its aligned offset. */
static bd_status assemble(const bd_ckpt *ck, const blob *blobs, bd_buf *out)
{
    bd_buf_zeros(out, BDC_HEADER_SIZE);
    for (size_t i = 0; i < ck->n_kv; i++)
        put_kv(out, &ck->kvs[i]);
    uint64_t cursor = 0;
    for (size_t i = 0; i < ck->n_tensors; i++) {
        uint64_t offset = align_up(cursor, BDC_ALIGN);
        put_record(out, &ck->tensors[i], &blobs[i], offset);
        cursor = offset + blobs[i].len;
    }
    bdc_header h = {
        .major = BDC_MAJOR, .minor = BDC_MINOR, .header_size = BDC_HEADER_SIZE,
        .alignment = BDC_ALIGN, .n_kv = (uint32_t)ck->n_kv,
        .n_tensors = ck->n_tensors, .index_size = out->len - BDC_HEADER_SIZE,
        .data_offset = align_up(out->len, BDC_ALIGN), .data_size = cursor,
    };
    if (h.index_size > BDC_INDEX_MAX)
        return bd_fail(BD_E_ARG, "ckpt: index of %llu bytes exceeds the cap of"
                       " %llu", (unsigned long long)h.index_size, BDC_INDEX_MAX);
    if (out->failed)
        return bd_fail(BD_E_NOMEM, "ckpt: out of memory building the index");
    bd_buf_zeros(out, h.data_offset - out->len);
    for (size_t i = 0; i < ck->n_tensors; i++) {
        bd_buf_zeros(out, align_up(out->len - h.data_offset, BDC_ALIGN)
                              - (out->len - h.data_offset));
        bd_buf_put(out, blobs[i].bytes ? blobs[i].bytes : ck->tensors[i].data,
                   blobs[i].len);
    }
    if (out->failed)
        return bd_fail(BD_E_NOMEM, "ckpt: out of memory assembling %llu bytes",
                       (unsigned long long)(h.data_offset + h.data_size));
    bdc_header_encode(&h, out->data);
    h.index_crc = bdc_meta_crc(out->data, h.data_offset);
    bdc_header_encode(&h, out->data);
    return BD_OK;
}

bd_status bd_ckpt_encode(const bd_ckpt *ck, const bd_ckpt_save_opts *opts,
                         uint8_t **bytes, size_t *len)
{
    int level = opts ? opts->level : bd_ckpt_save_defaults().level;
    if (level < 0 || level > BDC_LEVEL_MAX)
        return bd_fail(BD_E_ARG, "ckpt: zstd level %d, expected 0 (raw) to %d",
                       level, BDC_LEVEL_MAX);
    if (ck->n_kv > UINT32_MAX)
        return bd_fail(BD_E_ARG, "ckpt: %zu keys, at most %u", ck->n_kv,
                       UINT32_MAX);
    blob *blobs = calloc(ck->n_tensors + 1, sizeof *blobs);
    if (!blobs)
        return bd_fail(BD_E_NOMEM, "ckpt: out of memory");
    bd_status s = BD_OK;
    for (size_t i = 0; i < ck->n_tensors && s == BD_OK; i++)
        s = choose_blob(&ck->tensors[i], level, &blobs[i]);
    bd_buf out = {0};
    if (s == BD_OK)
        s = assemble(ck, blobs, &out);
    for (size_t i = 0; i < ck->n_tensors; i++)
        free(blobs[i].bytes);
    free(blobs);
    if (s != BD_OK) {
        bd_buf_free(&out);
        return s;
    }
    *bytes = out.data;
    *len = out.len;
    return BD_OK;
}

bd_status bd_ckpt_save(const bd_ckpt *ck, const char *path,
                       const bd_ckpt_save_opts *opts)
{
    uint8_t *bytes;
    size_t len;
    BD_TRY(bd_ckpt_encode(ck, opts, &bytes, &len));
    bd_status s = bd_write_file_atomic(path, bytes, len);
    free(bytes);
    return s;
}
