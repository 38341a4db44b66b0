/* safetensors files (format in bd/safetensors.h): the reader, which trusts
 * nothing and names the check and the values in every failure, and the
 * writer. The JSON header is read by a parser of exactly the structure the
 * format allows: an object of tensor entries and one "__metadata__" object
 * of strings. */
#include "bd/safetensors.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

#define FAIL(name, ...) bd_format_fail("safetensors", name, __VA_ARGS__)
#define DATA_ALIGN 8
#define UINT_MAX_JSON (UINT64_C(1) << 53) /* integers JSON readers keep exact */

/* ---- the header's JSON --------------------------------------------------- */

typedef struct entry {
    char    *name;
    int      dtype;  /* BD_CKPT_F32 or BD_CKPT_U8 */
    int      ndim;
    int64_t  dims[BD_CKPT_MAX_DIMS];
    uint64_t begin, end;  /* data_offsets */
} entry;

typedef struct header {
    const char *start, *p, *end;  /* the JSON and the cursor */
    const char *file;             /* the path, for messages */
    entry      *entries;
    size_t      n, cap;
    bool        has_metadata;
    bd_ckpt    *ck;               /* receives the metadata */
} header;

static void skip_ws(header *h)
{
    while (h->p < h->end
           && (*h->p == ' ' || *h->p == '\n' || *h->p == '\r' || *h->p == '\t'))
        h->p++;
}

/* "bad JSON at byte N (found 'c', expected <what>)" */
static bd_status syntax(header *h, const char *expected)
{
    char found[16];
    if (h->p >= h->end)
        snprintf(found, sizeof found, "the end");
    else if (*h->p >= 0x20 && *h->p < 0x7f)
        snprintf(found, sizeof found, "'%c'", *h->p);
    else
        snprintf(found, sizeof found, "byte 0x%02x", (unsigned char)*h->p);
    return FAIL(h->file, "header: bad JSON at byte %zu (found %s, expected %s)",
                (size_t)(h->p - h->start), found, expected);
}

static bd_status expect(header *h, char c, const char *expected)
{
    skip_ws(h);
    if (h->p >= h->end || *h->p != c)
        return syntax(h, expected);
    h->p++;
    skip_ws(h);
    return BD_OK;
}

/* After a member: true at '}' (consumed), false at ',' (consumed). */
static bd_status next_member(header *h, char close, bool *done)
{
    skip_ws(h);
    if (h->p < h->end && (*h->p == ',' || *h->p == close)) {
        *done = *h->p++ == close;
        skip_ws(h);
        return BD_OK;
    }
    return syntax(h, close == '}' ? "',' or '}'" : "',' or ']'");
}

static int hex4(const char *p, const char *end)
{
    if (end - p < 4)
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = 16 * v + d;
    }
    return v;
}

static char *put_utf8(char *o, uint32_t c)
{
    if (c < 0x80) {
        *o++ = (char)c;
    } else if (c < 0x800) {
        *o++ = (char)(0xc0 | c >> 6);
        *o++ = (char)(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
        *o++ = (char)(0xe0 | c >> 12);
        *o++ = (char)(0x80 | (c >> 6 & 0x3f));
        *o++ = (char)(0x80 | (c & 0x3f));
    } else {
        *o++ = (char)(0xf0 | c >> 18);
        *o++ = (char)(0x80 | (c >> 12 & 0x3f));
        *o++ = (char)(0x80 | (c >> 6 & 0x3f));
        *o++ = (char)(0x80 | (c & 0x3f));
    }
    return o;
}

/* The code point of the \u escape at h->p (after "\u"), a surrogate pair
 * included; h->p moves past it. -1 when malformed or U+0000. */
static int32_t unicode_escape(header *h)
{
    int hi = hex4(h->p, h->end);
    if (hi <= 0 || (hi >= 0xdc00 && hi < 0xe000))
        return -1;
    h->p += 4;
    if (hi < 0xd800 || hi >= 0xdc00)
        return hi;
    if (h->end - h->p < 6 || h->p[0] != '\\' || h->p[1] != 'u')
        return -1;
    int lo = hex4(h->p + 2, h->end);
    if (lo < 0xdc00 || lo >= 0xe000)
        return -1;
    h->p += 6;
    return 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
}

/* One escape after the backslash into o; NULL if it is not JSON's. */
static char *unescape(header *h, char *o)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit = h->p < h->end && *h->p ? strchr(from, *h->p) : NULL;
    if (hit) {
        h->p++;
        *o++ = to[hit - from];
        return o;
    }
    if (h->p >= h->end || *h->p != 'u')
        return NULL;
    h->p++;
    int32_t c = unicode_escape(h);
    return c < 0 ? NULL : put_utf8(o, (uint32_t)c);
}

/* A string at the cursor, unescaped into a new NUL-terminated buffer. */
static bd_status read_string(header *h, char **out)
{
    if (h->p >= h->end || *h->p != '"')
        return syntax(h, "a string");
    const char *q = ++h->p;
    while (q < h->end && *q != '"')
        q += *q == '\\' ? 2 : 1;
    if (q >= h->end)
        return FAIL(h->file, "header: string from byte %zu has no closing quote",
                    (size_t)(h->p - 1 - h->start));
    char *s = malloc((size_t)(q - h->p) + 1), *o = s;
    if (!s)
        return bd_fail(BD_E_NOMEM, "safetensors: out of memory");
    while (h->p < q) {
        const unsigned char c = (unsigned char)*h->p;
        const size_t at = (size_t)(h->p - h->start);
        if (c >= 0x20 && c != '\\') {
            *o++ = *h->p++;
            continue;
        }
        h->p++;
        if (c < 0x20 || !(o = unescape(h, o))) {
            free(s);
            return c < 0x20 ? FAIL(h->file, "header: control byte 0x%02x in a"
                                   " string at byte %zu", c, at)
                            : FAIL(h->file, "header: bad escape in a string at"
                                   " byte %zu (expected one of \\\" \\\\ \\/"
                                   " \\b \\f \\n \\r \\t \\uXXXX, not \\u0000"
                                   " or a lone surrogate)", at);
        }
    }
    *o = '\0';
    h->p = q + 1;
    *out = s;
    return BD_OK;
}

/* A non-negative integer below 2^53. */
static bd_status read_uint(header *h, const char *what, uint64_t *v)
{
    const char *at = h->p;
    if (h->p < h->end && *h->p == '-')
        return FAIL(h->file, "header: %s is negative at byte %zu", what,
                    (size_t)(at - h->start));
    if (h->p >= h->end || *h->p < '0' || *h->p > '9')
        return syntax(h, "an integer");
    uint64_t x = 0;
    while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
        x = 10 * x + (uint64_t)(*h->p++ - '0');
        if (x >= UINT_MAX_JSON)
            return FAIL(h->file, "header: %s at byte %zu is 2^53 or more", what,
                        (size_t)(at - h->start));
    }
    if (h->p < h->end && (*h->p == '.' || *h->p == 'e' || *h->p == 'E'))
        return FAIL(h->file, "header: %s at byte %zu is not an integer", what,
                    (size_t)(at - h->start));
    if (*at == '0' && h->p - at > 1)
        return FAIL(h->file, "header: %s at byte %zu has a leading zero", what,
                    (size_t)(at - h->start));
    *v = x;
    return BD_OK;
}

/* [a, b, ...] of at most max integers. */
static bd_status read_uints(header *h, const char *tensor, const char *what,
                            int max, uint64_t *v, int *n)
{
    BD_TRY(expect(h, '[', "'['"));
    *n = 0;
    if (h->p < h->end && *h->p == ']') {
        h->p++;
        return BD_OK;
    }
    for (bool done = false; !done;) {
        if (*n == max)
            return FAIL(h->file, "tensor '%s': %s has more than %d values",
                        tensor, what, max);
        BD_TRY(read_uint(h, what, &v[(*n)++]));
        BD_TRY(next_member(h, ']', &done));
    }
    return BD_OK;
}

static bd_status read_dtype(header *h, entry *e)
{
    char *d;
    BD_TRY(read_string(h, &d));
    e->dtype = !strcmp(d, "F32") ? BD_CKPT_F32 : !strcmp(d, "U8") ? BD_CKPT_U8 : 0;
    bd_status s = e->dtype ? BD_OK
                : FAIL(h->file, "tensor '%s': dtype '%.32s', expected F32 or U8"
                       " (bd reads float32 tensors and bytes)", e->name, d);
    free(d);
    return s;
}

static bd_status read_field(header *h, entry *e, const char *field, bool seen[3])
{
    static const char *const FIELDS[] = {"dtype", "shape", "data_offsets"};
    int f = 0;
    while (f < 3 && strcmp(field, FIELDS[f]) != 0)
        f++;
    if (f == 3)
        return FAIL(h->file, "tensor '%s': unknown field '%.64s' (expected dtype,"
                    " shape, data_offsets)", e->name, field);
    if (seen[f])
        return FAIL(h->file, "tensor '%s': field '%s' given twice", e->name, field);
    seen[f] = true;
    uint64_t v[BD_CKPT_MAX_DIMS];
    int n;
    if (f == 0)
        return read_dtype(h, e);
    if (f == 1) {
        BD_TRY(read_uints(h, e->name, "shape", BD_CKPT_MAX_DIMS, v, &n));
        e->ndim = n;
        for (int i = 0; i < n; i++)
            e->dims[i] = (int64_t)v[i];
        return BD_OK;
    }
    BD_TRY(read_uints(h, e->name, "data_offsets", 2, v, &n));
    if (n != 2)
        return FAIL(h->file, "tensor '%s': data_offsets has %d values, expected"
                    " 2", e->name, n);
    e->begin = v[0];
    e->end = v[1];
    return BD_OK;
}

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]} for e->name. */
static bd_status read_entry(header *h, entry *e)
{
    static const char *const FIELDS[] = {"dtype", "shape", "data_offsets"};
    bool seen[3] = {false, false, false};
    BD_TRY(expect(h, '{', "'{' opening a tensor"));
    for (bool done = false; !done;) {
        char *field;
        BD_TRY(read_string(h, &field));
        bd_status s = expect(h, ':', "':'");
        if (s == BD_OK)
            s = read_field(h, e, field, seen);
        free(field);
        BD_TRY(s);
        BD_TRY(next_member(h, '}', &done));
    }
    for (int f = 0; f < 3; f++)
        if (!seen[f])
            return FAIL(h->file, "tensor '%s': no '%s'", e->name, FIELDS[f]);
    return BD_OK;
}

static bd_status check_name(header *h, const char *what, const char *name)
{
    char why[96];
    if (bdc_name_ok(name, strlen(name), why, sizeof why))
        return BD_OK;
    return FAIL(h->file, "%s '%.64s': %s", what, name, why);
}

/* One "key": "value" of __metadata__, kept as a string key. */
static bd_status read_meta_pair(header *h)
{
    char *key = NULL, *value = NULL;
    bd_status s = read_string(h, &key);
    if (s == BD_OK)
        s = check_name(h, "metadata key", key);
    if (s == BD_OK && bd_ckpt_kv_find(h->ck, key))
        s = FAIL(h->file, "metadata key '%s' given twice", key);
    if (s == BD_OK)
        s = expect(h, ':', "':'");
    if (s == BD_OK)
        s = read_string(h, &value);
    if (s == BD_OK)
        s = bd_ckpt_set_str(h->ck, key, value);
    free(key);
    free(value);
    return s;
}

static bd_status read_metadata(header *h)
{
    if (h->has_metadata)
        return FAIL(h->file, "__metadata__ given twice");
    h->has_metadata = true;
    BD_TRY(expect(h, '{', "'{' opening __metadata__ (an object of strings)"));
    if (h->p < h->end && *h->p == '}') {
        h->p++;
        return BD_OK;
    }
    for (bool done = false; !done;) {
        BD_TRY(read_meta_pair(h));
        BD_TRY(next_member(h, '}', &done));
    }
    return BD_OK;
}

static bd_status add_entry(header *h, char *name)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        entry *grown = realloc(h->entries, cap * sizeof *grown);
        if (!grown) {
            free(name);
            return bd_fail(BD_E_NOMEM, "safetensors: out of memory");
        }
        h->entries = grown;
        h->cap = cap;
    }
    entry *e = &h->entries[h->n++];
    memset(e, 0, sizeof *e);
    e->name = name;
    BD_TRY(check_name(h, "tensor name", name));
    return read_entry(h, e);
}

static bd_status read_member(header *h)
{
    char *name;
    BD_TRY(read_string(h, &name));
    bd_status s = expect(h, ':', "':'");
    if (s == BD_OK && strcmp(name, "__metadata__") == 0) {
        free(name);
        return read_metadata(h);
    }
    if (s != BD_OK) {
        free(name);
        return s;
    }
    return add_entry(h, name);  /* owns name from here */
}

static bd_status read_json(header *h)
{
    BD_TRY(expect(h, '{', "'{' opening the header"));
    if (h->p < h->end && *h->p == '}')
        h->p++;
    else
        for (bool done = false; !done;) {
            BD_TRY(read_member(h));
            BD_TRY(next_member(h, '}', &done));
        }
    skip_ws(h);
    if (h->p < h->end)
        return FAIL(h->file, "header: byte 0x%02x at %zu after the JSON object"
                    " (expected spaces to the end of the %zu-byte header)",
                    (unsigned char)*h->p, (size_t)(h->p - h->start),
                    (size_t)(h->end - h->start));
    return BD_OK;
}

/* ---- the data ------------------------------------------------------------ */

static bd_status check_extent(header *h, const entry *e, uint64_t data_len)
{
    uint64_t nbytes;
    char dims[200];
    if (!bdc_nbytes(e->dtype, e->ndim, e->dims, &nbytes) || nbytes > BDC_RAW_MAX)
        return FAIL(h->file, "tensor '%s': shape %s is more than %llu bytes",
                    e->name, bdc_dims_str(e->ndim, e->dims, dims, sizeof dims),
                    (unsigned long long)BDC_RAW_MAX);
    if (e->end < e->begin)
        return FAIL(h->file, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                    ") end before they begin", e->name, e->begin, e->end);
    if (e->end - e->begin != nbytes)
        return FAIL(h->file, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                    ") hold %" PRIu64 " bytes, expected %" PRIu64 " for shape %s"
                    " of %s", e->name, e->begin, e->end, e->end - e->begin,
                    nbytes, bdc_dims_str(e->ndim, e->dims, dims, sizeof dims),
                    e->dtype == BD_CKPT_F32 ? "F32" : "U8");
    if (e->end > data_len)
        return FAIL(h->file, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                    ") past the end of the data (%" PRIu64 " bytes)", e->name,
                    e->begin, e->end, data_len);
    return BD_OK;
}

static int by_offset(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* The tensors tile [0, data_len): no overlap, no gap, nothing after. */
static bd_status check_tiling(header *h, uint64_t data_len)
{
    const entry **order = malloc((h->n ? h->n : 1) * sizeof *order);
    if (!order)
        return bd_fail(BD_E_NOMEM, "safetensors: out of memory");
    for (size_t i = 0; i < h->n; i++)
        order[i] = &h->entries[i];
    qsort(order, h->n, sizeof *order, by_offset);
    bd_status s = BD_OK;
    uint64_t at = 0;
    for (size_t i = 0; i < h->n && s == BD_OK; i++) {
        const entry *e = order[i];
        if (e->begin < at)
            s = FAIL(h->file, "tensors '%s' and '%s' overlap ([%" PRIu64 ", %"
                     PRIu64 ") and [%" PRIu64 ", %" PRIu64 "))", order[i - 1]->name,
                     e->name, order[i - 1]->begin, order[i - 1]->end, e->begin,
                     e->end);
        else if (e->begin > at)
            s = FAIL(h->file, "data bytes [%" PRIu64 ", %" PRIu64 ") belong to no"
                     " tensor (the format allows no gaps)", at, e->begin);
        at = e->end;
    }
    if (s == BD_OK && at != data_len)
        s = FAIL(h->file, "data bytes [%" PRIu64 ", %" PRIu64 ") after the last"
                 " tensor belong to no tensor", at, data_len);
    free(order);
    return s;
}

static bd_status copy_tensors(header *h, const uint8_t *data)
{
    for (size_t i = 0; i < h->n; i++) {
        const entry *e = &h->entries[i];
        if (bd_ckpt_tensor_find(h->ck, e->name))
            return FAIL(h->file, "tensor '%s' given twice", e->name);
        BD_TRY(bd_ckpt_add_array(h->ck, e->name, (bd_ckpt_dtype)e->dtype, e->ndim,
                                 e->dims, data + e->begin));
    }
    return BD_OK;
}

static bd_status parse(const uint8_t *bytes, size_t len, header *h)
{
    if (len < 8)
        return FAIL(h->file, "file of %zu bytes, shorter than the 8-byte header"
                    " length", len);
    const uint64_t n = bd_le64(bytes);
    if (n > BD_SAFETENSORS_HEADER_MAX)
        return FAIL(h->file, "header length %" PRIu64 ", expected at most %u",
                    n, BD_SAFETENSORS_HEADER_MAX);
    if (n > len - 8)
        return FAIL(h->file, "header length %" PRIu64 " past the end of the file"
                    " (%zu bytes after the length)", n, len - 8);
    h->start = h->p = (const char *)bytes + 8;
    h->end = h->start + n;
    BD_TRY(read_json(h));
    const uint64_t data_len = len - 8 - n;
    for (size_t i = 0; i < h->n; i++)
        BD_TRY(check_extent(h, &h->entries[i], data_len));
    BD_TRY(check_tiling(h, data_len));
    return copy_tensors(h, bytes + 8 + n);
}

bd_status bd_safetensors_load_mem(const void *bytes, size_t len,
                                  const char *name, bd_ckpt **out)
{
    *out = NULL;
    header h = {.file = name ? name : "(memory)", .ck = bd_ckpt_new()};
    if (!h.ck)
        return BD_E_NOMEM;
    bd_status s = parse(bytes, len, &h);
    for (size_t i = 0; i < h.n; i++)
        free(h.entries[i].name);
    free(h.entries);
    if (s != BD_OK) {
        bd_ckpt_free(h.ck);
        return s;
    }
    *out = h.ck;
    return BD_OK;
}

bd_status bd_safetensors_load(const char *path, bd_ckpt **out)
{
    uint8_t *bytes;
    size_t len;
    *out = NULL;
    BD_TRY(bd_read_file(path, &bytes, &len));
    bd_status s = bd_safetensors_load_mem(bytes, len, path, out);
    free(bytes);
    return s;
}

/* ---- writer -------------------------------------------------------------- */

static void put_str(bd_buf *b, const char *s) { bd_buf_put(b, s, strlen(s)); }

/* A JSON string literal: ", \ and control bytes escaped. */
static void put_quoted(bd_buf *b, const char *s)
{
    bd_buf_u8(b, '"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\' || *c < 0x20) {
            snprintf(esc, sizeof esc, *c < 0x20 ? "\\u%04x" : "\\%c", *c);
            put_str(b, esc);
        } else {
            bd_buf_u8(b, *c);
        }
    }
    bd_buf_u8(b, '"');
}

static bd_status put_metadata(bd_buf *b, const bd_ckpt *ck)
{
    put_str(b, "\"__metadata__\":{");
    for (size_t i = 0; i < ck->n_kv; i++) {
        const bd_ckpt_kv *kv = &ck->kvs[i];
        char num[32];
        switch (kv->type) {
        case BD_CKPT_U64: snprintf(num, sizeof num, "%" PRIu64, kv->v.u64); break;
        case BD_CKPT_I64: snprintf(num, sizeof num, "%" PRId64, kv->v.i64); break;
        case BD_CKPT_F64: snprintf(num, sizeof num, "%.17g", kv->v.f64); break;
        case BD_CKPT_STR: break;
        default:
            return bd_fail(BD_E_ARG, "safetensors: key '%s' is an array; the"
                           " metadata holds strings and numbers only", kv->key);
        }
        put_str(b, i ? ",\"" : "\"");
        put_str(b, kv->key);
        put_str(b, "\":");
        put_quoted(b, kv->type == BD_CKPT_STR ? kv->v.str : num);
    }
    put_str(b, "}");
    return BD_OK;
}

static void put_entry(bd_buf *b, const bd_ckpt_tensor *t, uint64_t at)
{
    char num[64];
    put_str(b, "\"");
    put_str(b, t->name);
    put_str(b, t->dtype == BD_CKPT_F32 ? "\":{\"dtype\":\"F32\",\"shape\":["
                                       : "\":{\"dtype\":\"U8\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
        snprintf(num, sizeof num, d ? ",%" PRId64 : "%" PRId64, t->dims[d]);
        put_str(b, num);
    }
    snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", at,
             at + t->nbytes);
    put_str(b, num);
}

static bd_status header_json(const bd_ckpt *ck, bd_buf *json)
{
    put_str(json, "{");
    if (ck->n_kv)
        BD_TRY(put_metadata(json, ck));
    uint64_t at = 0;
    for (size_t i = 0; i < ck->n_tensors; i++) {
        if (i || ck->n_kv)
            put_str(json, ",");
        put_entry(json, &ck->tensors[i], at);
        at += ck->tensors[i].nbytes;
    }
    put_str(json, "}");
    while (json->len % DATA_ALIGN)
        bd_buf_u8(json, ' ');
    return BD_OK;
}

bd_status bd_safetensors_encode(const bd_ckpt *ck, uint8_t **bytes, size_t *len)
{
    bd_buf json = {0}, b = {0};
    bd_status s = header_json(ck, &json);
    if (s == BD_OK) {
        bd_buf_u64(&b, json.len);
        bd_buf_put(&b, json.data, json.len);
        for (size_t i = 0; i < ck->n_tensors; i++)
            bd_buf_put(&b, ck->tensors[i].data, ck->tensors[i].nbytes);
        if (json.failed || b.failed)
            s = bd_fail(BD_E_NOMEM, "safetensors: out of memory encoding %zu"
                        " tensors", ck->n_tensors);
    }
    bd_buf_free(&json);
    if (s != BD_OK) {
        bd_buf_free(&b);
        return s;
    }
    *bytes = b.data;
    *len = b.len;
    return BD_OK;
}

bd_status bd_safetensors_save(const bd_ckpt *ck, const char *path)
{
    uint8_t *bytes;
    size_t len;
    BD_TRY(bd_safetensors_encode(ck, &bytes, &len));
    bd_status s = bd_write_file_atomic(path, bytes, len);
    free(bytes);
    return s;
}
