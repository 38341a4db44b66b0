/* Writing archives (.bda): a run's checkpoint history in one file. Each
 * tensor is stored as it is (byte shuffled, in one zstd frame), as its
 * delta from its previous version, as its residual from the line through
 * its two previous versions or (an EMA) from a prediction from its weights,
 * whichever is smallest, the residuals either as one frame of their byte
 * planes or split into classes and raw low bits; every key_every-th entry
 * is a key entry that needs no earlier one. Blobs that re-encode to themselves are stored as values,
 * others verbatim. With optimizer_at_keys the other entries hold analysis
 * checkpoints (no optimizer state). The layout is in FORMAT.md. */
#include "format.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

bd_archive_opts bd_archive_defaults(void)
{
    return (bd_archive_opts){.level = 9, .key_every = 20};
}
typedef struct writer {
    bd_atomic file;
    bd_buf    index;
    int       level;
    bool      optimizer_at_keys;
    bd_ckpt  *prev;       /* the previous entry's checkpoint */
    bd_ckpt  *prev2;      /* the one before, unless prev is a key entry */
    uint8_t  *prev_file;  /* and its bytes (the meta is the prefix) */
    size_t    prev_meta;
} writer;

/* zstd of the byte planes of n coded bytes (which it frees). */
static bd_status planes_frame(uint8_t *coded, size_t n, size_t width,
                              int level, uint8_t **out, size_t *out_len)
{
    uint8_t *planes = malloc(n ? n : 1);
    bd_status s = planes ? BD_OK : bd_fail(BD_E_NOMEM, "archive: cannot"
                                           " shuffle %zu bytes", n);
    if (s == BD_OK) {
        bd_shuffle(coded, planes, n / width, width);
        s = bd_zstd_compress(planes, n, level, NULL, 0, out, out_len);
    }
    free(planes);
    free(coded);
    return s;
}

/* A buffer for t's coded bytes. */
static bd_status coded_buffer(const bd_ckpt_tensor *t, uint8_t **coded)
{
    *coded = malloc(t->nbytes ? t->nbytes : 1);
    return *coded ? BD_OK : bd_fail(BD_E_NOMEM, "archive: cannot code tensor"
                                    " '%s'", t->name);
}

/* The key payload of t: one frame of the byte planes of its raw bytes. */
static bd_status key_payload(const bd_ckpt_tensor *t, int level, uint8_t **out,
                             size_t *out_len)
{
    uint8_t *coded;
    BD_TRY(coded_buffer(t, &coded));
    memcpy(coded, t->data, t->nbytes);
    return planes_frame(coded, t->nbytes, bdc_elem_size(t->dtype), level, out,
                        out_len);
}

/* The body of t's coded residuals (which it frees): one frame of their
 * byte planes or, for an f32 tensor, the split residuals when they are
 * smaller (*split says which). */
static bd_status residual_body(const bd_ckpt_tensor *t, uint8_t *coded,
                               int level, uint8_t **out, size_t *out_len,
                               bool *split)
{
    uint8_t *parts = NULL;
    size_t parts_len = 0;
    bd_status s = t->dtype == BD_CKPT_F32
                ? bda_split_encode(coded, t->nbytes / 4, level, &parts, &parts_len)
                : BD_OK;
    if (s != BD_OK) {
        free(coded);
        return s;
    }
    s = planes_frame(coded, t->nbytes, bdc_elem_size(t->dtype), level, out,
                     out_len);
    *split = s == BD_OK && parts && parts_len < *out_len;
    if (*split) {
        free(*out);
        *out = parts;
        *out_len = parts_len;
    } else {
        free(parts);
    }
    return s;
}

/* The delta payload of t from its previous version. */
static bd_status delta_payload(const bd_ckpt_tensor *t, const bd_ckpt_tensor *prev,
                               int level, uint8_t **out, size_t *out_len,
                               bool *split)
{
    uint8_t *coded;
    BD_TRY(coded_buffer(t, &coded));
    bda_delta_encode(t->dtype, t->data, prev->data, coded, t->nbytes);
    return residual_body(t, coded, level, out, out_len, split);
}

/* A predicted payload: its coefficients (ncoef bytes), then the body of
 * the coded residuals (which it frees). */
static bd_status coefs_payload(const bd_ckpt_tensor *t, const float *c,
                               size_t ncoef, uint8_t *coded, int level,
                               uint8_t **out, size_t *out_len, bool *split)
{
    uint8_t *body;
    size_t len;
    BD_TRY(residual_body(t, coded, level, &body, &len, split));
    *out = malloc(ncoef + len);
    if (!*out) {
        free(body);
        return bd_fail(BD_E_NOMEM, "archive: cannot code tensor '%s'", t->name);
    }
    memcpy(*out, c, ncoef);
    memcpy(*out + ncoef, body, len);
    free(body);
    *out_len = ncoef + len;
    return BD_OK;
}

/* The EMA payload of t: its residuals from the prediction from its
 * weights and its previous version. */
static bd_status ema_payload(const bd_ckpt_tensor *t, const bda_ema_refs *r,
                             int level, uint8_t **out, size_t *out_len,
                             bool *split)
{
    uint8_t *coded;
    BD_TRY(coded_buffer(t, &coded));
    float c[2];
    bda_ema_fit(t->data, r, t->nbytes / 4, c);
    bda_ema_encode(t->data, r, c, coded, t->nbytes / 4);
    return coefs_payload(t, c, BDA_EMA_COEFS, coded, level, out, out_len, split);
}

/* The key-ema payload of t: its residuals from w + c w, w its weights in
 * the same entry. */
static bd_status ema_key_payload(const bd_ckpt_tensor *t, const float *w,
                                 int level, uint8_t **out, size_t *out_len,
                                 bool *split)
{
    uint8_t *coded;
    BD_TRY(coded_buffer(t, &coded));
    float c = bda_ema_key_fit(t->data, w, t->nbytes / 4);
    bda_ema_key_encode(t->data, w, c, coded, t->nbytes / 4);
    return coefs_payload(t, &c, BDA_EMA_KEY_COEFS, coded, level, out, out_len,
                         split);
}

/* The trend payload of t: its residuals from the line through its two
 * previous versions. */
static bd_status trend_payload(const bd_ckpt_tensor *t, const bda_trend_refs *r,
                               int level, uint8_t **out, size_t *out_len,
                               bool *split)
{
    uint8_t *coded;
    BD_TRY(coded_buffer(t, &coded));
    float c = bda_trend_fit(t->data, r, t->nbytes / 4);
    bda_trend_encode(t->data, r, c, coded, t->nbytes / 4);
    return coefs_payload(t, &c, BDA_TREND_COEFS, coded, level, out, out_len,
                         split);
}

/* Whether re-encoding t as its record says gives back the file's blob. */
static bd_status blob_reproducible(const bd_ckpt_tensor *t, const uint8_t *blob,
                                   bool *same)
{
    const bd_ckpt_storage *st = &t->stored;
    uint8_t *again;
    size_t len;
    BD_TRY(bdc_blob_encode(t, st->codec, st->filter, st->level, &again, &len));
    *same = len == st->stored_size && memcmp(again, blob, len) == 0;
    free(again);
    return BD_OK;
}

/* Keep the candidate payload (split or not) if it is smaller than the
 * best so far. */
static void keep_smaller(uint8_t *cand, size_t cand_len, uint8_t coding,
                         bool split, uint8_t **best, size_t *best_len,
                         uint8_t *best_coding)
{
    bool smaller = cand_len < *best_len;
    free(smaller ? *best : cand);
    if (smaller) {
        *best = cand;
        *best_len = cand_len;
        *best_coding = (uint8_t)(coding | (split ? BDA_SPLIT : 0));
    }
}

/* The smallest of the key, delta (given a previous version), trend (given
 * two), EMA (given its references) and key-ema (an EMA without them, given
 * its weights) payloads. cur, prev and prev2 are the entries'
 * checkpoints; prev is NULL in a key entry, prev2 also in the entry after
 * it. */
static bd_status best_payload(const bd_ckpt *cur, const bd_ckpt *prev,
                              const bd_ckpt *prev2, const bd_ckpt_tensor *t,
                              int level, uint8_t *coding, uint8_t **out,
                              size_t *out_len)
{
    uint8_t *cand;
    size_t len;
    bool split;
    BD_TRY(key_payload(t, level, out, out_len));
    *coding = BDA_KEY;
    const bd_ckpt_tensor *p = bda_previous(prev, t);
    bd_status s = BD_OK;
    if (p && (s = delta_payload(t, p, level, &cand, &len, &split)) == BD_OK)
        keep_smaller(cand, len, BDA_DELTA, split, out, out_len, coding);
    bda_trend_refs tr;
    if (s == BD_OK && prev2 && bda_trend_refs_find(prev, prev2, t, &tr)
        && (s = trend_payload(t, &tr, level, &cand, &len, &split)) == BD_OK)
        keep_smaller(cand, len, BDA_TREND, split, out, out_len, coding);
    bda_ema_refs r;
    const float *w;
    if (s == BD_OK && prev && bda_ema_refs_find(cur, prev, t, &r)) {
        if ((s = ema_payload(t, &r, level, &cand, &len, &split)) == BD_OK)
            keep_smaller(cand, len, BDA_EMA, split, out, out_len, coding);
    } else if (s == BD_OK && (w = bda_ema_key_ref(cur, t))
               && (s = ema_key_payload(t, w, level, &cand, &len, &split)) == BD_OK) {
        keep_smaller(cand, len, BDA_EMA_KEY, split, out, out_len, coding);
    }
    if (s != BD_OK)
        free(*out);
    return s;
}

/* A blob we could not reproduce is kept verbatim. */
static bd_status put_tensor(writer *w, const bd_ckpt *cur,
                            const bd_ckpt_tensor *t, const uint8_t *blob,
                            bool key)
{
    bool same;
    BD_TRY(blob_reproducible(t, blob, &same));
    uint8_t coding = BDA_VERBATIM, *frame = NULL;
    size_t len = t->stored.stored_size;
    if (same)
        BD_TRY(best_payload(cur, key ? NULL : w->prev, key ? NULL : w->prev2,
                            t, w->level, &coding, &frame, &len));
    bd_status s = bd_atomic_write(&w->file, frame ? frame : blob, len);
    free(frame);
    bd_buf_u8(&w->index, coding);
    bd_buf_u64(&w->index, len);
    return s;
}

static void put_entry_record(writer *w, uint64_t step, const uint8_t *bytes,
                             size_t len, bool key, bool analysis,
                             const bdc_header *h, size_t frame_len)
{
    bd_buf_u64(&w->index, step);
    bd_buf_u64(&w->index, len);
    bd_buf_u32(&w->index, bd_crc32c(0, bytes, len));
    bd_buf_u8(&w->index, key);
    bd_buf_u8(&w->index, analysis);
    bd_buf_zeros(&w->index, 2);
    bd_buf_u64(&w->index, h->data_offset);
    bd_buf_u64(&w->index, frame_len);
    bd_buf_u64(&w->index, h->n_tensors);
}

/* Drop ck's optimizer tensors; false when it has none. */
static bool drop_optimizer(bd_ckpt *ck, int *level)
{
    size_t kept = 0;
    *level = 0;
    for (size_t i = 0; i < ck->n_tensors; i++) {
        bd_ckpt_tensor *t = &ck->tensors[i];
        if (!*level && t->stored.codec == BDC_CODEC_ZSTD)
            *level = t->stored.level;
        if (strncmp(t->name, BDA_OPTIMIZER, strlen(BDA_OPTIMIZER)) != 0) {
            ck->tensors[kept++] = *t;
            continue;
        }
        free((void *)t->name);
        free((void *)t->data);
    }
    bool dropped = kept < ck->n_tensors;
    ck->n_tensors = kept;
    return dropped;
}

/* The analysis checkpoint of a training checkpoint (bytes, len, ck are
 * replaced): without its optimizer state, of kind "analysis", encoded as
 * bd_ckpt_save does at the level its blobs had. One without optimizer
 * state stays as it is. */
static bd_status make_analysis(const char *path, uint8_t **bytes, size_t *len,
                               bd_ckpt **ck)
{
    int level;
    if (!drop_optimizer(*ck, &level))
        return BD_OK;
    BD_TRY(bd_ckpt_set_str(*ck, "bd.kind", BDA_ANALYSIS));
    bd_ckpt_save_opts o = {.level = level ? level : bd_ckpt_save_defaults().level};
    uint8_t *out;
    size_t n;
    bd_ckpt *back;
    BD_TRY(bd_ckpt_encode(*ck, &o, &out, &n));
    bd_status s = bd_ckpt_load_mem(out, n, path, &back);
    if (s != BD_OK) {
        free(out);
        return s;
    }
    bd_ckpt_free(*ck);
    free(*bytes);
    *ck = back;
    *bytes = out;
    *len = n;
    return BD_OK;
}

/* One checkpoint: its meta frame (against the previous meta unless key),
 * then one payload per tensor. It becomes the previous entry. */
static bd_status put_entry(writer *w, const char *path, uint64_t step, bool key)
{
    uint8_t *bytes, *frame = NULL;
    size_t len, frame_len;
    bd_ckpt *ck = NULL;
    bdc_header h;
    BD_TRY(bd_read_file(path, &bytes, &len));
    bd_status s = bd_ckpt_load_mem(bytes, len, path, &ck);
    if (s == BD_OK && w->optimizer_at_keys && !key)
        s = make_analysis(path, &bytes, &len, &ck);
    if (s == BD_OK) {
        bdc_header_decode(bytes, &h);
        s = bd_zstd_compress(bytes, h.data_offset, w->level,
                             key ? NULL : w->prev_file, key ? 0 : w->prev_meta,
                             &frame, &frame_len);
    }
    if (s == BD_OK) {
        put_entry_record(w, step, bytes, len, key, bd_ckpt_is_analysis(ck), &h,
                         frame_len);
        s = bd_atomic_write(&w->file, frame, frame_len);
    }
    free(frame);
    for (size_t i = 0; s == BD_OK && i < ck->n_tensors; i++)
        s = put_tensor(w, ck, &ck->tensors[i],
                       bytes + h.data_offset + ck->tensors[i].stored.offset, key);
    bd_ckpt_free(w->prev2);
    w->prev2 = key ? NULL : w->prev;
    if (key)
        bd_ckpt_free(w->prev);
    free(w->prev_file);
    w->prev = ck;
    w->prev_file = bytes;
    w->prev_meta = s == BD_OK ? h.data_offset : 0;
    return s;
}

static bd_status finish(writer *w, size_t n, const bd_archive_opts *o)
{
    if (w->index.failed)
        return bd_fail(BD_E_NOMEM, "archive: out of memory for the index");
    if (w->index.len > BDA_INDEX_MAX)
        return bd_fail(BD_E_ARG, "archive: index of %zu bytes above the cap of"
                       " %llu", w->index.len, BDA_INDEX_MAX);
    uint64_t index_offset = w->file.size;
    BD_TRY(bd_atomic_write(&w->file, w->index.data, w->index.len));
    uint8_t hdr[BDA_HEADER_SIZE];
    bd_buf b = {0};
    bd_buf_put(&b, BDA_MAGIC, 4);
    bd_buf_u16(&b, BDA_MAJOR);
    bd_buf_u16(&b, BDA_MINOR);
    bd_buf_u32(&b, BDA_HEADER_SIZE);
    bd_buf_u32(&b, (uint32_t)o->key_every);
    bd_buf_u32(&b, (uint32_t)o->level);
    bd_buf_u32(&b, ZSTD_versionNumber());
    bd_buf_u64(&b, n);
    bd_buf_u64(&b, index_offset);
    bd_buf_u64(&b, w->index.len);
    bd_buf_zeros(&b, 16);
    if (b.failed)
        return bd_fail(BD_E_NOMEM, "archive: out of memory");
    memcpy(hdr, b.data, BDA_HEADER_SIZE);
    bd_buf_free(&b);
    uint32_t crc = bd_crc32c(0, hdr, BDA_HEADER_SIZE);
    bd_put_le32(hdr + 56, bd_crc32c(crc, w->index.data, w->index.len));
    return bd_atomic_pwrite(&w->file, hdr, BDA_HEADER_SIZE, 0);
}

bd_status bd_archive_write(const char *out, const char *const *paths,
                           const uint64_t *steps, size_t n,
                           const bd_archive_opts *opts)
{
    bd_archive_opts o = opts ? *opts : bd_archive_defaults();
    if (o.level < 1 || o.level > BDC_LEVEL_MAX)
        return bd_fail(BD_E_ARG, "archive: level %d, expected 1 to %d", o.level,
                       BDC_LEVEL_MAX);
    if (o.key_every < 1)
        return bd_fail(BD_E_ARG, "archive: key_every %d, expected >= 1",
                       o.key_every);
    for (size_t i = 1; i < n; i++)
        if (steps[i] <= steps[i - 1])
            return bd_fail(BD_E_ARG, "archive: step %llu of '%s' follows step"
                           " %llu, expected increasing steps",
                           (unsigned long long)steps[i], paths[i],
                           (unsigned long long)steps[i - 1]);
    writer w = {.level = o.level, .optimizer_at_keys = o.optimizer_at_keys};
    BD_TRY(bd_atomic_open(&w.file, out));
    bd_status s = bd_atomic_write(&w.file, (uint8_t[BDA_HEADER_SIZE]){0},
                                  BDA_HEADER_SIZE);
    for (size_t i = 0; s == BD_OK && i < n; i++)
        s = put_entry(&w, paths[i], steps[i], i % (size_t)o.key_every == 0);
    if (s == BD_OK)
        s = finish(&w, n, &o);
    bd_ckpt_free(w.prev);
    bd_ckpt_free(w.prev2);
    free(w.prev_file);
    bd_buf_free(&w.index);
    if (s != BD_OK) {
        bd_atomic_abort(&w.file);
        return s;
    }
    return bd_atomic_commit(&w.file);
}
