/* Reading archives (.bda): the index is read and checked on open; an
 * extraction decodes the entries from the nearest key entry on, and
 * rebuilds the checkpoint by re-encoding its blobs as its index records
 * them, checking the CRC of the whole file. The layout is in FORMAT.md. */
#include "format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* ---- the index ----------------------------------------------------------- */

typedef struct entry {
    uint64_t       step, file_size, meta_size, meta_stored, n_tensors;
    uint64_t       offset;   /* of the meta frame; tensor payloads follow */
    uint64_t       stored;   /* all its payload bytes */
    uint32_t       file_crc;
    bool           key, analysis;
    const uint8_t *tensors;  /* n_tensors x (u8 coding, u64 stored) */
} entry;

struct bd_archive {
    int      fd;
    char    *path;
    uint32_t zstd_version;  /* of the writer */
    uint16_t major;         /* 1.x: no EMA coding; < 3.0: no analysis entries;
                               < 4.0: no trend coding; < 5.0: no key-ema
                               coding, no split residuals */
    uint8_t *index;
    entry   *entries;
    size_t   n;
};

#define FAIL(a, ...) bd_format_fail("archive", (a)->path, __VA_ARGS__)

typedef struct bda_header {
    uint16_t major, minor;
    uint32_t header_size, key_every, level, zstd_version, index_crc;
    uint64_t n_entries, index_offset, index_size;
} bda_header;

static bd_status check_header(bd_archive *a, const uint8_t *p, uint64_t file_size,
                              bda_header *h)
{
    if (file_size < BDA_HEADER_SIZE)
        return FAIL(a, "file truncated inside the header (found %llu bytes, the"
                    " header needs %u)", (unsigned long long)file_size,
                    BDA_HEADER_SIZE);
    if (memcmp(p, BDA_MAGIC, 4) != 0)
        return FAIL(a, "bad magic (found %02x %02x %02x %02x, expected 'BDAR')",
                    p[0], p[1], p[2], p[3]);
    *h = (bda_header){
        .major = bd_le16(p + 4), .minor = bd_le16(p + 6),
        .header_size = bd_le32(p + 8), .key_every = bd_le32(p + 12),
        .level = bd_le32(p + 16), .zstd_version = bd_le32(p + 20),
        .n_entries = bd_le64(p + 24), .index_offset = bd_le64(p + 32),
        .index_size = bd_le64(p + 40), .index_crc = bd_le32(p + 56),
    };
    if (h->major < 1 || h->major > BDA_MAJOR)
        return FAIL(a, "format version %u.%u is %s than this reader (reads 1.x"
                    " to %d.x)", h->major, h->minor,
                    h->major > BDA_MAJOR ? "newer" : "older", BDA_MAJOR);
    if (h->header_size < BDA_HEADER_SIZE || h->header_size > BDA_HEADER_MAX)
        return FAIL(a, "header_size out of range (found %u, expected %u to %u)",
                    h->header_size, BDA_HEADER_SIZE, BDA_HEADER_MAX);
    if (h->index_size > BDA_INDEX_MAX)
        return FAIL(a, "index_size above the cap (found %llu, at most %llu)",
                    (unsigned long long)h->index_size, BDA_INDEX_MAX);
    if (h->index_offset < h->header_size || h->index_offset > file_size
        || h->index_size != file_size - h->index_offset)
        return FAIL(a, "file size mismatch (index_offset %llu + index_size %llu,"
                    " file has %llu bytes)", (unsigned long long)h->index_offset,
                    (unsigned long long)h->index_size,
                    (unsigned long long)file_size);
    if (h->n_entries > h->index_size / BDA_ENTRY_MIN)
        return FAIL(a, "n_entries too large for the index (found %llu, an index"
                    " of %llu bytes holds at most %llu)",
                    (unsigned long long)h->n_entries,
                    (unsigned long long)h->index_size,
                    (unsigned long long)(h->index_size / BDA_ENTRY_MIN));
    return BD_OK;
}

/* The fixed part of entry i at *at; *at moves past it. */
static bd_status parse_entry_fixed(bd_archive *a, const bda_header *h, size_t i,
                                   uint64_t *at, entry *e)
{
    if (h->index_size - *at < BDA_ENTRY_MIN)
        return FAIL(a, "index ends inside entry %zu (needs %u bytes at index"
                    " offset %llu, %llu left)", i, BDA_ENTRY_MIN,
                    (unsigned long long)*at,
                    (unsigned long long)(h->index_size - *at));
    const uint8_t *p = a->index + *at;
    *e = (entry){
        .step = bd_le64(p), .file_size = bd_le64(p + 8),
        .file_crc = bd_le32(p + 16), .key = p[20] == 1, .analysis = p[21] == 1,
        .meta_size = bd_le64(p + 24), .meta_stored = bd_le64(p + 32),
        .n_tensors = bd_le64(p + 40),
    };
    *at += BDA_ENTRY_MIN;
    const bool analysis_known = a->major >= 3;
    if (p[20] > 1 || p[21] > analysis_known || p[22] || p[23])
        return FAIL(a, "entry %zu: bad kind or reserved bytes (found %02x %02x"
                    " %02x %02x, expected 00/01 %s 00 00 in a %u.x archive)", i,
                    p[20], p[21], p[22], p[23], analysis_known ? "00/01" : "00",
                    a->major);
    if (i == 0 && !e->key)
        return FAIL(a, "entry 0 is not a key entry");
    if (i > 0 && e->step <= a->entries[i - 1].step)
        return FAIL(a, "entry %zu: steps not increasing (step %llu after %llu)",
                    i, (unsigned long long)e->step,
                    (unsigned long long)a->entries[i - 1].step);
    if (e->meta_size < BDC_HEADER_SIZE || e->meta_size > BDA_META_MAX
        || e->meta_size > e->file_size)
        return FAIL(a, "entry %zu: meta_size out of range (found %llu, expected"
                    " %u to min(%llu, file_size %llu))", i,
                    (unsigned long long)e->meta_size, BDC_HEADER_SIZE,
                    (unsigned long long)BDA_META_MAX,
                    (unsigned long long)e->file_size);
    if (e->n_tensors > (h->index_size - *at) / BDA_TENSOR_REC)
        return FAIL(a, "entry %zu: n_tensors too large (found %llu, the %llu"
                    " bytes left in the index hold at most %llu)", i,
                    (unsigned long long)e->n_tensors,
                    (unsigned long long)(h->index_size - *at),
                    (unsigned long long)((h->index_size - *at) / BDA_TENSOR_REC));
    return BD_OK;
}

/* The codings' names, by number. */
static const char *const coding_names[] = {"key", "delta", "verbatim", "ema",
                                           "trend", "key-ema"};

/* Whether a coding byte is allowed in an entry (key or not) of a major
 * version: codings 3 from 2.0, 4 from 4.0, 5 and the split bit (on 1, 3,
 * 4, 5) from 5.0; in a key entry only 0, 2 and 5. */
static bool coding_allowed(uint16_t major, bool key, uint8_t byte)
{
    static const uint16_t since[] = {1, 1, 1, 2, 4, 5};  /* by base coding */
    uint8_t base = byte & ~BDA_SPLIT;
    bool split = byte & BDA_SPLIT;
    if (base > BDA_EMA_KEY || major < since[base])
        return false;
    if (key && base != BDA_KEY && base != BDA_VERBATIM && base != BDA_EMA_KEY)
        return false;
    return !split || (major >= 5 && base != BDA_KEY && base != BDA_VERBATIM);
}

/* The codings allowed, for a message: "0 key, 2 verbatim, ...". */
static void allowed_codings(uint16_t major, bool key, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (uint8_t c = 0; c <= BDA_EMA_KEY && at < len; c++)
        if (coding_allowed(major, key, c))
            at += (size_t)snprintf(buf + at, len - at, "%s%u %s", at ? ", " : "",
                                   c, coding_names[c]);
    if (at < len && coding_allowed(major, key, BDA_EMA_KEY | BDA_SPLIT))
        snprintf(buf + at, len - at, ", each but key and verbatim +%u split",
                 BDA_SPLIT);
}

/* The coefficient bytes a payload of this coding starts with. */
static uint64_t coefficient_bytes(uint8_t base)
{
    return base == BDA_EMA ? BDA_EMA_COEFS : base == BDA_TREND ? BDA_TREND_COEFS
         : base == BDA_EMA_KEY ? BDA_EMA_KEY_COEFS : 0;
}

/* Entry i, whose payloads start at *payload; both cursors move past it. */
static bd_status parse_entry(bd_archive *a, const bda_header *h, size_t i,
                             uint64_t *at, uint64_t *payload)
{
    entry *e = &a->entries[i];
    BD_TRY(parse_entry_fixed(a, h, i, at, e));
    e->tensors = a->index + *at;
    e->offset = *payload;
    uint64_t sum = e->meta_stored;
    for (uint64_t t = 0; t < e->n_tensors; t++) {
        const uint8_t *r = e->tensors + t * BDA_TENSOR_REC;
        if (!coding_allowed(a->major, e->key, r[0])) {
            char allowed[200];
            allowed_codings(a->major, e->key, allowed, sizeof allowed);
            return FAIL(a, "entry %zu: tensor %llu: bad coding (found %u,"
                        " expected %s in a %s entry of a %u.x archive)", i,
                        (unsigned long long)t, r[0], allowed,
                        e->key ? "key" : "delta", a->major);
        }
        const uint8_t base = r[0] & ~BDA_SPLIT;
        const uint64_t coefs = coefficient_bytes(base);
        if (bd_le64(r + 1) < coefs)
            return FAIL(a, "entry %zu: tensor %llu: %s payload of %llu bytes is"
                        " shorter than its %llu bytes of coefficients", i,
                        (unsigned long long)t, coding_names[base],
                        (unsigned long long)bd_le64(r + 1),
                        (unsigned long long)coefs);
        if (__builtin_add_overflow(sum, bd_le64(r + 1), &sum))
            return FAIL(a, "entry %zu: payload sizes overflow", i);
    }
    *at += e->n_tensors * BDA_TENSOR_REC;
    if (sum > h->index_offset - *payload)
        return FAIL(a, "entry %zu: payloads run past the index (%llu bytes at"
                    " offset %llu, index at %llu)", i, (unsigned long long)sum,
                    (unsigned long long)*payload,
                    (unsigned long long)h->index_offset);
    e->stored = sum;
    *payload += sum;
    return BD_OK;
}

static bd_status parse_index(bd_archive *a, const uint8_t *hdr_bytes,
                             const bda_header *h)
{
    uint8_t hdr[BDA_HEADER_MAX];
    memcpy(hdr, hdr_bytes, h->header_size);
    memset(hdr + 56, 0, 4);
    uint32_t crc = bd_crc32c(bd_crc32c(0, hdr, h->header_size), a->index,
                             h->index_size);
    if (crc != h->index_crc)
        return FAIL(a, "index crc32c mismatch (computed 0x%08x, header says"
                    " 0x%08x)", crc, h->index_crc);
    a->entries = calloc(h->n_entries + 1, sizeof *a->entries);
    if (!a->entries)
        return bd_fail(BD_E_NOMEM, "archive '%s': out of memory", a->path);
    uint64_t at = 0, payload = h->header_size;
    for (a->n = 0; a->n < h->n_entries; a->n++)
        BD_TRY(parse_entry(a, h, a->n, &at, &payload));
    if (at != h->index_size)
        return FAIL(a, "index has trailing bytes (entries end at %llu, index_size"
                    " %llu)", (unsigned long long)at,
                    (unsigned long long)h->index_size);
    if (payload != h->index_offset)
        return FAIL(a, "gap before the index (payloads end at %llu, index_offset"
                    " %llu)", (unsigned long long)payload,
                    (unsigned long long)h->index_offset);
    return BD_OK;
}

static bd_status open_checked(bd_archive *a)
{
    struct stat st;
    if (fstat(a->fd, &st) != 0 || !S_ISREG(st.st_mode))
        return bd_fail(BD_E_IO, "read '%s': not a regular file", a->path);
    uint64_t size = (uint64_t)st.st_size;
    uint8_t hdr[BDA_HEADER_MAX];
    bda_header h = {0};
    BD_TRY(bd_pread_exact(a->fd, hdr, size < BDA_HEADER_SIZE ? size
                          : BDA_HEADER_SIZE, 0, a->path));
    BD_TRY(check_header(a, hdr, size, &h));
    BD_TRY(bd_pread_exact(a->fd, hdr, h.header_size, 0, a->path));
    a->zstd_version = h.zstd_version;
    a->major = h.major;
    a->index = malloc(h.index_size ? h.index_size : 1);
    if (!a->index)
        return bd_fail(BD_E_NOMEM, "archive '%s': cannot allocate its index of"
                       " %llu bytes", a->path, (unsigned long long)h.index_size);
    BD_TRY(bd_pread_exact(a->fd, a->index, h.index_size, h.index_offset, a->path));
    return parse_index(a, hdr, &h);
}

bd_status bd_archive_open(const char *path, bd_archive **out)
{
    bd_archive *a = calloc(1, sizeof *a);
    if (!a || !(a->path = strdup(path))) {
        free(a);
        return bd_fail(BD_E_NOMEM, "archive '%s': out of memory", path);
    }
    a->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (a->fd < 0) {
        bd_status s = bd_fail(BD_E_IO, "read '%s': %s", path, strerror(errno));
        bd_archive_close(a);
        return s;
    }
    bd_status s = open_checked(a);
    if (s != BD_OK) {
        bd_archive_close(a);
        return s;
    }
    *out = a;
    return BD_OK;
}

void bd_archive_close(bd_archive *a)
{
    if (!a)
        return;
    if (a->fd >= 0)
        close(a->fd);
    free(a->entries);
    free(a->index);
    free(a->path);
    free(a);
}

size_t bd_archive_count(const bd_archive *a) { return a->n; }

bd_archive_entry bd_archive_entry_at(const bd_archive *a, size_t i)
{
    const entry *e = &a->entries[i];
    return (bd_archive_entry){.step = e->step, .file_size = e->file_size,
                              .stored_size = e->stored,
                              .n_tensors = e->n_tensors, .key = e->key,
                              .analysis = e->analysis};
}

static bd_status find_step(const bd_archive *a, uint64_t step, size_t *out)
{
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->entries[mid].step < step)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < a->n && a->entries[lo].step == step) {
        *out = lo;
        return BD_OK;
    }
    if (a->n == 0)
        return bd_fail(BD_E_ARG, "archive '%s': no step %llu (it is empty)",
                       a->path, (unsigned long long)step);
    return bd_fail(BD_E_ARG, "archive '%s': no step %llu (it holds %zu steps"
                   " from %llu to %llu)", a->path, (unsigned long long)step,
                   a->n, (unsigned long long)a->entries[0].step,
                   (unsigned long long)a->entries[a->n - 1].step);
}

/* ---- decoding entries ---------------------------------------------------- */

/* One decoded entry: its checkpoint (tensors decoded so far have data) and
 * its meta bytes (the prefix of the next entry's meta frame). */
typedef struct state {
    bd_ckpt *ck;
    uint8_t *meta;
    size_t   meta_len;
} state;

static void state_free(state *s)
{
    bd_ckpt_free(s->ck);
    free(s->meta);
    *s = (state){0};
}

static bd_status read_payload(bd_archive *a, uint64_t at, uint64_t n,
                              uint8_t **out)
{
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return bd_fail(BD_E_NOMEM, "archive '%s': cannot allocate %llu bytes",
                       a->path, (unsigned long long)n);
    bd_status s = bd_pread_exact(a->fd, p, n, at, a->path);
    if (s != BD_OK) {
        free(p);
        return s;
    }
    *out = p;
    return BD_OK;
}

/* Decode n bytes from the frame into a new buffer. */
static bd_status unzstd(const uint8_t *frame, uint64_t stored, uint64_t n,
                        const void *prefix, size_t prefix_len, const char *where,
                        uint8_t **out)
{
    BD_TRY(bd_zstd_check(frame, stored, n, where));
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return bd_fail(BD_E_NOMEM, "%s: cannot allocate %llu bytes", where,
                       (unsigned long long)n);
    bd_status s = bd_zstd_decompress(frame, stored, p, n, prefix, prefix_len,
                                     where);
    if (s != BD_OK) {
        free(p);
        return s;
    }
    *out = p;
    return BD_OK;
}

static bd_status decode_meta(bd_archive *a, const entry *e, const state *prev,
                             state *cur)
{
    char where[600], name[600];
    snprintf(where, sizeof where, "archive '%s': step %llu: meta", a->path,
             (unsigned long long)e->step);
    snprintf(name, sizeof name, "%s:step %llu", a->path,
             (unsigned long long)e->step);
    uint8_t *frame = NULL;
    BD_TRY(read_payload(a, e->offset, e->meta_stored, &frame));
    bd_status s = unzstd(frame, e->meta_stored, e->meta_size,
                         e->key ? NULL : prev->meta, e->key ? 0 : prev->meta_len,
                         where, &cur->meta);
    free(frame);
    BD_TRY(s);
    cur->meta_len = e->meta_size;
    bdc_header h;
    BD_TRY(bdc_parse(cur->meta, cur->meta_len, e->file_size, name, &h, &cur->ck));
    if (h.data_offset != e->meta_size || h.n_tensors != e->n_tensors)
        return FAIL(a, "step %llu: entry does not match its checkpoint (meta_size"
                    " %llu, n_tensors %llu; the checkpoint has data_offset %llu,"
                    " n_tensors %llu)", (unsigned long long)e->step,
                    (unsigned long long)e->meta_size,
                    (unsigned long long)e->n_tensors,
                    (unsigned long long)h.data_offset,
                    (unsigned long long)h.n_tensors);
    if (bd_ckpt_is_analysis(cur->ck) != e->analysis)
        return FAIL(a, "step %llu: entry does not match its checkpoint (the"
                    " entry says %s, the checkpoint's bd.kind %s \"%s\")",
                    (unsigned long long)e->step, e->analysis ? "analysis"
                    : "not analysis", e->analysis ? "is not" : "is", BDA_ANALYSIS);
    return BD_OK;
}

/* How a coded payload refers to other tensors: a delta to the previous
 * version, a trend to the two previous versions and its coefficient, an
 * EMA to its references and coefficients, a key-ema to its weights and
 * coefficient; a key to nothing. */
typedef struct refs {
    uint8_t               coding;  /* without BDA_SPLIT */
    bool                  split;
    const bd_ckpt_tensor *prev;
    bda_trend_refs        trend;
    bda_ema_refs          ema;
    const float          *w;       /* of a key-ema payload */
    float                 c[2];
} refs;

/* The residuals of a payload body (or a key payload's raw bytes) into a
 * new buffer: one frame of byte planes, or split. */
static bd_status decode_body(const bd_ckpt_tensor *t, const refs *r,
                             const uint8_t *body, uint64_t stored,
                             const char *where, uint8_t **out)
{
    uint8_t *raw = malloc(t->nbytes ? t->nbytes : 1);
    if (!raw)
        return bd_fail(BD_E_NOMEM, "%s: cannot allocate %llu bytes", where,
                       (unsigned long long)t->nbytes);
    uint8_t *planes = NULL;
    bd_status s = r->split ? bda_split_decode(body, stored, t->nbytes / 4, raw, where)
                           : unzstd(body, stored, t->nbytes, NULL, 0, where, &planes);
    if (s == BD_OK && !r->split) {
        size_t width = bdc_elem_size(t->dtype);
        bd_unshuffle(planes, raw, t->nbytes / width, width);
    }
    free(planes);
    if (s != BD_OK) {
        free(raw);
        return s;
    }
    *out = raw;
    return BD_OK;
}

/* Raw bytes of a coded payload's body: its residuals, the delta or
 * prediction undone, the CRC the checkpoint's index records checked. */
static bd_status decode_coded(bd_ckpt_tensor *t, const refs *r,
                              const uint8_t *body, uint64_t stored,
                              const char *where)
{
    uint8_t *raw = NULL;
    BD_TRY(decode_body(t, r, body, stored, where, &raw));
    if (r->coding == BDA_DELTA)
        bda_delta_decode(t->dtype, raw, r->prev->data, t->nbytes);
    if (r->coding == BDA_EMA)
        bda_ema_decode(raw, &r->ema, r->c, t->nbytes / 4);
    if (r->coding == BDA_TREND)
        bda_trend_decode(raw, &r->trend, r->c[0], t->nbytes / 4);
    if (r->coding == BDA_EMA_KEY)
        bda_ema_key_decode(raw, r->w, r->c[0], t->nbytes / 4);
    uint32_t crc = bd_crc32c(0, raw, t->nbytes);
    if (crc != t->stored.crc32c) {
        free(raw);
        return bd_fail(BD_E_FORMAT, "%s: crc32c mismatch of the raw bytes (found"
                       " 0x%08x, expected 0x%08x)", where, crc, t->stored.crc32c);
    }
    t->data = raw;
    return BD_OK;
}

/* What a payload of this coding refers to, checked (prev[0] is the
 * previous entry, prev[1] the one before when it is in the key entry's
 * chain); an EMA, trend or key-ema payload's coefficients are read from
 * its first bytes (*skip of them; the index check made sure it has them). */
static bd_status find_refs(const state prev[2], const state *cur,
                           const bd_ckpt_tensor *t, const uint8_t *payload,
                           const char *where, refs *r, uint64_t *skip)
{
    *skip = coefficient_bytes(r->coding);
    memcpy(r->c, payload, *skip);
    if (r->split && t->dtype != BD_CKPT_F32)
        return bd_fail(BD_E_FORMAT, "%s: split residuals of a %s tensor (only f32"
                       " residuals split)", where, bdc_dtype_name(t->dtype));
    if (r->coding == BDA_DELTA && !(r->prev = bda_previous(prev[0].ck, t)))
        return bd_fail(BD_E_FORMAT, "%s: delta without a previous version of"
                       " the same dtype and size", where);
    if (r->coding == BDA_TREND && !bda_trend_refs_find(prev[0].ck, prev[1].ck, t,
                                                        &r->trend))
        return bd_fail(BD_E_FORMAT, "%s: trend coding without its"
                       " references (an f32 tensor of its size in the two"
                       " previous steps, after the key step)", where);
    if (r->coding == BDA_EMA && !bda_ema_refs_find(cur->ck, prev[0].ck, t, &r->ema))
        return bd_fail(BD_E_FORMAT, "%s: ema coding without its references"
                       " (an f32 'ema.<p>', <p> not an 'ema.' name, needs <p> in"
                       " this and the previous step and itself in the previous"
                       " step, of its size)", where);
    if (r->coding == BDA_EMA_KEY && !(r->w = bda_ema_key_ref(cur->ck, t)))
        return bd_fail(BD_E_FORMAT, "%s: key-ema coding without its weights (an"
                       " f32 'ema.<p>', <p> not an 'ema.' name, needs <p> in this"
                       " step, of its size)", where);
    return BD_OK;
}

static bd_status decode_tensor(bd_archive *a, const entry *e, size_t i,
                               uint64_t at, const state prev[2], state *cur)
{
    bd_ckpt_tensor *t = &cur->ck->tensors[i];
    const uint8_t byte = e->tensors[i * BDA_TENSOR_REC];
    refs r = {.coding = byte & ~BDA_SPLIT, .split = byte & BDA_SPLIT};
    uint64_t stored = bd_le64(e->tensors + i * BDA_TENSOR_REC + 1), skip = 0;
    char where[700];
    snprintf(where, sizeof where, "archive '%s': step %llu: tensor '%s'",
             a->path, (unsigned long long)e->step, t->name);
    if (r.coding == BDA_VERBATIM && stored != t->stored.stored_size)
        return bd_fail(BD_E_FORMAT, "%s: verbatim payload size mismatch (found"
                       " %llu, stored_size %llu)", where,
                       (unsigned long long)stored,
                       (unsigned long long)t->stored.stored_size);
    uint8_t *payload = NULL;
    BD_TRY(read_payload(a, at, stored, &payload));
    bd_status s = r.coding == BDA_VERBATIM
                ? bdc_blob_decode(t, payload, where)
                : find_refs(prev, cur, t, payload, where, &r, &skip);
    if (s == BD_OK && r.coding != BDA_VERBATIM)
        s = decode_coded(t, &r, payload + skip, stored - skip, where);
    free(payload);
    return s;
}

/* Whether tensor `name` is needed to read `only` (every tensor when NULL):
 * it is `only`, or the weight `only`'s EMA may be predicted from. */
static bool wanted(const char *name, const char *only)
{
    return !only || strcmp(name, only) == 0
        || (strncmp(only, "ema.", 4) == 0 && strcmp(name, only + 4) == 0);
}

/* Whether a payload of this coding byte refers to weights of its own
 * entry (an ema or key-ema payload). */
static bool refers_to_own_entry(uint8_t byte)
{
    uint8_t base = byte & ~BDA_SPLIT;
    return base == BDA_EMA || base == BDA_EMA_KEY;
}

/* Decode the wanted tensors of entry e: the EMA-coded ones last, since
 * they refer to weights of the same entry. */
static bd_status decode_entry(bd_archive *a, const entry *e, const char *only,
                              const state prev[2], state *cur)
{
    for (int ema_pass = 0; ema_pass < 2; ema_pass++) {
        uint64_t at = e->offset + e->meta_stored;
        for (size_t t = 0; t < e->n_tensors; t++) {
            const uint8_t *rec = e->tensors + t * BDA_TENSOR_REC;
            if (refers_to_own_entry(rec[0]) == ema_pass
                && wanted(cur->ck->tensors[t].name, only))
                BD_TRY(decode_tensor(a, e, t, at, prev, cur));
            at += bd_le64(rec + 1);
        }
    }
    return BD_OK;
}

/* Decode the entries from the key entry at or before j up to j, and of
 * each only the tensors that reading `only` needs (every tensor when NULL). */
static bd_status decode_upto(bd_archive *a, size_t j, const char *only,
                             state *out)
{
    size_t k = j;
    while (!a->entries[k].key)
        k--;
    state prev[2] = {{0}}, cur = {0};  /* the previous entry, the one before */
    bd_status s = BD_OK;
    for (size_t i = k; i <= j && s == BD_OK; i++) {
        const entry *e = &a->entries[i];
        s = decode_meta(a, e, prev, &cur);
        if (s == BD_OK)
            s = decode_entry(a, e, only, prev, &cur);
        state_free(&prev[1]);
        prev[1] = prev[0];
        prev[0] = cur;
        cur = (state){0};
    }
    state_free(&prev[1]);
    if (s != BD_OK) {
        state_free(&prev[0]);
        return s;
    }
    *out = prev[0];
    return BD_OK;
}

/* The blob of tensor i as the original file held it. */
static bd_status original_blob(bd_archive *a, const entry *e, size_t i,
                               uint64_t at, const bd_ckpt_tensor *t,
                               uint8_t **blob, size_t *len)
{
    if (e->tensors[i * BDA_TENSOR_REC] == BDA_VERBATIM) {
        *len = t->stored.stored_size;
        return read_payload(a, at, *len, blob);
    }
    BD_TRY(bdc_blob_encode(t, t->stored.codec, t->stored.filter, t->stored.level,
                           blob, len));
    if (*len == t->stored.stored_size)
        return BD_OK;
    free(*blob);
    return FAIL(a, "step %llu: tensor '%s': re-encoded blob size mismatch (found"
                " %zu, the original has %llu; archived with zstd %u, this is"
                " zstd %u)", (unsigned long long)e->step, t->name, *len,
                (unsigned long long)t->stored.stored_size, a->zstd_version,
                ZSTD_versionNumber());
}

/* The original file: meta, then each blob at its offset, zero padding. */
static bd_status rebuild(bd_archive *a, const entry *e, const state *st,
                         uint8_t **bytes, size_t *len)
{
    uint8_t *out = calloc(e->file_size ? e->file_size : 1, 1);
    if (!out)
        return bd_fail(BD_E_NOMEM, "archive '%s': cannot allocate %llu bytes",
                       a->path, (unsigned long long)e->file_size);
    memcpy(out, st->meta, st->meta_len);
    uint64_t at = e->offset + e->meta_stored;
    bd_status s = BD_OK;
    for (size_t i = 0; i < e->n_tensors && s == BD_OK; i++) {
        const bd_ckpt_tensor *t = &st->ck->tensors[i];
        uint8_t *blob;
        size_t n;
        s = original_blob(a, e, i, at, t, &blob, &n);
        if (s == BD_OK)
            memcpy(out + e->meta_size + t->stored.offset, blob, n);
        if (s == BD_OK)
            free(blob);
        at += bd_le64(e->tensors + i * BDA_TENSOR_REC + 1);
    }
    uint32_t crc = s == BD_OK ? bd_crc32c(0, out, e->file_size) : 0;
    if (s == BD_OK && crc != e->file_crc)
        s = FAIL(a, "step %llu: rebuilt checkpoint differs from the original"
                 " (crc32c 0x%08x, expected 0x%08x; archived with zstd %u, this"
                 " is zstd %u)", (unsigned long long)e->step, crc, e->file_crc,
                 a->zstd_version, ZSTD_versionNumber());
    if (s != BD_OK) {
        free(out);
        return s;
    }
    *bytes = out;
    *len = (size_t)e->file_size;
    return BD_OK;
}

bd_status bd_archive_extract_mem(bd_archive *a, uint64_t step, uint8_t **bytes,
                                 size_t *len)
{
    size_t j;
    state st;
    BD_TRY(find_step(a, step, &j));
    BD_TRY(decode_upto(a, j, NULL, &st));
    bd_status s = rebuild(a, &a->entries[j], &st, bytes, len);
    state_free(&st);
    return s;
}

/* Entry i rebuilt from cur (decoded after prev, see decode_upto) and
 * checked whole. */
static bd_status verify_entry(bd_archive *a, size_t i, const state prev[2],
                              state *cur)
{
    const entry *e = &a->entries[i];
    BD_TRY(decode_meta(a, e, prev, cur));
    BD_TRY(decode_entry(a, e, NULL, prev, cur));
    uint8_t *bytes;
    size_t len;
    BD_TRY(rebuild(a, e, cur, &bytes, &len));
    free(bytes);
    return BD_OK;
}

bd_status bd_archive_verify(bd_archive *a, bd_archive_verify_fn report,
                            void *ctx, size_t *n_bad)
{
    state prev[2] = {{0}};  /* as in decode_upto */
    bool chain_ok = false;  /* the entry before decoded: a delta may follow */
    *n_bad = 0;
    for (size_t i = 0; i < a->n; i++) {
        const entry *e = &a->entries[i];
        state cur = {0};
        bd_status s;
        if (!e->key && !chain_ok)
            s = FAIL(a, "step %llu: not checked: it is coded against an"
                     " earlier entry that failed", (unsigned long long)e->step);
        else
            s = verify_entry(a, i, prev, &cur);
        chain_ok = s == BD_OK;
        *n_bad += s != BD_OK;
        report(ctx, bd_archive_entry_at(a, i), s == BD_OK ? NULL : bd_last_error());
        state_free(&prev[1]);
        if (e->key)  /* the entries before a key entry are not in its chain */
            state_free(&prev[0]);
        prev[1] = prev[0];
        prev[0] = cur;
        if (!chain_ok) {
            state_free(&prev[0]);
            state_free(&prev[1]);
        }
    }
    state_free(&prev[0]);
    state_free(&prev[1]);
    return BD_OK;
}

/* The checkpoint file of `step` of the archive at path, in memory. */
static bd_status extract_file(const char *path, uint64_t step, uint8_t **bytes,
                              size_t *len)
{
    bd_archive *a;
    BD_TRY(bd_archive_open(path, &a));
    bd_status s = bd_archive_extract_mem(a, step, bytes, len);
    bd_archive_close(a);
    return s;
}

bd_status bd_archive_extract(const char *path, uint64_t step,
                             const char *out_path)
{
    uint8_t *bytes;
    size_t len;
    BD_TRY(extract_file(path, step, &bytes, &len));
    bd_status s = bd_write_file_atomic(out_path, bytes, len);
    free(bytes);
    return s;
}

bd_status bd_archive_load(const char *path, uint64_t step, const char *name,
                          bd_ckpt **out)
{
    uint8_t *bytes;
    size_t len;
    *out = NULL;
    BD_TRY(extract_file(path, step, &bytes, &len));
    bd_status s = bd_ckpt_load_mem(bytes, len, name, out);
    free(bytes);
    return s;
}

/* A tensor entry j lacks: for the optimizer state of an analysis entry,
 * the key entry before it that has it. */
static bd_status no_tensor(const bd_archive *a, size_t j, const char *name)
{
    const entry *e = &a->entries[j];
    size_t k = j;
    while (!a->entries[k].key)
        k--;
    if (e->analysis && strncmp(name, BDA_OPTIMIZER, strlen(BDA_OPTIMIZER)) == 0)
        return bd_fail(BD_E_ARG, "archive '%s': step %llu has no tensor '%s': the"
                       " archive keeps the optimizer state at its key steps only"
                       " (the last before it: step %llu)", a->path,
                       (unsigned long long)e->step, name,
                       (unsigned long long)a->entries[k].step);
    return bd_fail(BD_E_ARG, "archive '%s': step %llu has no tensor '%s'",
                   a->path, (unsigned long long)e->step, name);
}

bd_status bd_archive_read_tensor(const char *path, uint64_t step,
                                 const char *name, bd_tensor **out)
{
    bd_archive *a;
    size_t j;
    state st = {0};
    BD_TRY(bd_archive_open(path, &a));
    bd_status s = find_step(a, step, &j);
    if (s == BD_OK)
        s = decode_upto(a, j, name, &st);
    if (s == BD_OK && !bd_ckpt_tensor_find(st.ck, name))
        s = no_tensor(a, j, name);
    if (s == BD_OK)
        s = bd_ckpt_get_tensor(st.ck, name, out);
    state_free(&st);
    bd_archive_close(a);
    return s;
}
