/* Tensor blobs: byte shuffle, single zstd frames with content size and
 * checksum, the checks a frame must pass before and while decoding, and the
 * deltas and EMA predictions that archives store. */
#include "format.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* An EMA prediction must round the same when archived and when extracted,
 * on any machine: float arithmetic in float, and no fused multiply-add. */
#if FLT_EVAL_METHOD != 0
#error "archive EMA predictions need FLT_EVAL_METHOD 0 (SSE or NEON floats)"
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

void bd_shuffle(const uint8_t *in, uint8_t *out, size_t n, size_t width)
{
    for (size_t b = 0; b < width; b++)
        for (size_t i = 0; i < n; i++)
            out[b * n + i] = in[i * width + b];
}

void bd_unshuffle(const uint8_t *in, uint8_t *out, size_t n, size_t width)
{
    for (size_t b = 0; b < width; b++)
        for (size_t i = 0; i < n; i++)
            out[i * width + b] = in[b * n + i];
}

/* ---- zstd frames --------------------------------------------------------- */

bd_status bd_zstd_compress(const void *src, size_t n, int level,
                           const void *prefix, size_t prefix_len,
                           uint8_t **out, size_t *out_len)
{
    size_t cap = ZSTD_compressBound(n);
    uint8_t *dst = malloc(cap ? cap : 1);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    if (!dst || !cc) {
        free(dst);
        ZSTD_freeCCtx(cc);
        return bd_fail(BD_E_NOMEM, "zstd: cannot allocate to compress %zu bytes", n);
    }
    size_t r = ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
    if (!ZSTD_isError(r) && prefix_len)
        r = ZSTD_CCtx_refPrefix(cc, prefix, prefix_len);
    if (!ZSTD_isError(r))
        r = ZSTD_compress2(cc, dst, cap, src, n);
    ZSTD_freeCCtx(cc);
    if (ZSTD_isError(r)) {
        free(dst);
        return bd_fail(BD_E_ARG, "zstd: cannot compress %zu bytes at level %d:"
                       " %s", n, level, ZSTD_getErrorName(r));
    }
    *out = dst;
    *out_len = r;
    return BD_OK;
}

#define ZSTD_FRAME_MAGIC 0xFD2FB528u

/* The magic and frame descriptor are read as RFC 8878, 3.1.1 lays them out. */
bd_status bd_zstd_check(const uint8_t *frame, uint64_t stored,
                        uint64_t raw_size, const char *where)
{
    if (raw_size / BDC_ZSTD_MAX_RATIO > stored)
        return bd_fail(BD_E_FORMAT, "%s: zstd frame of %llu bytes cannot hold"
                       " %llu bytes (ratio above %u)", where,
                       (unsigned long long)stored, (unsigned long long)raw_size,
                       BDC_ZSTD_MAX_RATIO);
    if (stored < 5)
        return bd_fail(BD_E_FORMAT, "%s: zstd frame of %llu bytes is shorter"
                       " than a frame header", where, (unsigned long long)stored);
    if (bd_le32(frame) != ZSTD_FRAME_MAGIC)
        return bd_fail(BD_E_FORMAT, "%s: not a zstd frame (found magic 0x%08x,"
                       " expected 0x%08x)", where, bd_le32(frame),
                       ZSTD_FRAME_MAGIC);
    uint8_t descriptor = frame[4];
    if (!(descriptor & 0x04))
        return bd_fail(BD_E_FORMAT, "%s: zstd frame has no checksum (frame"
                       " descriptor 0x%02x)", where, descriptor);
    if (descriptor & 0x03)
        return bd_fail(BD_E_FORMAT, "%s: zstd frame needs a dictionary (frame"
                       " descriptor 0x%02x)", where, descriptor);
    unsigned long long content = ZSTD_getFrameContentSize(frame, stored);
    if (content == ZSTD_CONTENTSIZE_UNKNOWN || content == ZSTD_CONTENTSIZE_ERROR)
        return bd_fail(BD_E_FORMAT, "%s: zstd frame has no readable content"
                       " size (%s)", where, content == ZSTD_CONTENTSIZE_UNKNOWN
                       ? "unknown" : "header error");
    if (content != raw_size)
        return bd_fail(BD_E_FORMAT, "%s: zstd frame content size mismatch"
                       " (found %llu, expected raw_size %llu)", where, content,
                       (unsigned long long)raw_size);
    size_t frame_len = ZSTD_findFrameCompressedSize(frame, stored);
    if (ZSTD_isError(frame_len))
        return bd_fail(BD_E_FORMAT, "%s: zstd frame is truncated or corrupt"
                       " within its %llu bytes (%s)", where,
                       (unsigned long long)stored, ZSTD_getErrorName(frame_len));
    if (frame_len != stored)
        return bd_fail(BD_E_FORMAT, "%s: zstd frame size mismatch (frame is"
                       " %zu bytes, stored_size %llu)", where, frame_len,
                       (unsigned long long)stored);
    return BD_OK;
}

bd_status bd_zstd_decompress(const uint8_t *frame, uint64_t stored,
                             void *dst, uint64_t raw_size,
                             const void *prefix, size_t prefix_len,
                             const char *where)
{
    BD_TRY(bd_zstd_check(frame, stored, raw_size, where));
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    if (!dc)
        return bd_fail(BD_E_NOMEM, "%s: cannot allocate a zstd context", where);
    size_t r = prefix_len ? ZSTD_DCtx_refPrefix(dc, prefix, prefix_len) : 0;
    if (!ZSTD_isError(r))
        r = ZSTD_decompressDCtx(dc, dst, (size_t)raw_size, frame, (size_t)stored);
    ZSTD_freeDCtx(dc);
    if (ZSTD_isError(r))
        return bd_fail(BD_E_FORMAT, "%s: zstd frame does not decode (%s)",
                       where, ZSTD_getErrorName(r));
    if (r != raw_size)
        return bd_fail(BD_E_FORMAT, "%s: zstd frame decoded to %zu bytes,"
                       " expected %llu", where, r, (unsigned long long)raw_size);
    return BD_OK;
}

/* ---- archive deltas ------------------------------------------------------ */

/* f32 bits to an integer that orders as the floats do (negatives below
 * positives), and back. */
static uint32_t ordered(uint32_t bits)
{
    return bits >> 31 ? ~bits : bits | 0x80000000u;
}

static uint32_t unordered(uint32_t key)
{
    return key >> 31 ? key & 0x7FFFFFFFu : ~key;
}

/* The difference of the ordered integers of x and of its reference,
 * zigzag coded, so that nearby floats give small numbers; and back. */
static uint32_t residual(uint32_t x, uint32_t ref)
{
    uint32_t d = ordered(x) - ordered(ref);
    return d << 1 ^ (uint32_t)-(int32_t)(d >> 31);
}

static uint32_t restore(uint32_t z, uint32_t ref)
{
    uint32_t d = z >> 1 ^ (uint32_t)-(int32_t)(z & 1);
    return unordered(ordered(ref) + d);
}

static uint32_t bits_at(const uint8_t *p, uint64_t i)
{
    uint32_t b;
    memcpy(&b, p + 4 * i, 4);
    return b;
}

/* The delta of a version from the previous one. f32: residuals against
 * the previous floats (on trained weights 2 to 5% smaller than XOR after
 * zstd); u8: XOR. */
void bda_delta_encode(int dtype, const uint8_t *cur, const uint8_t *prev,
                      uint8_t *out, uint64_t n)
{
    if (dtype != BD_CKPT_F32) {
        for (uint64_t i = 0; i < n; i++)
            out[i] = cur[i] ^ prev[i];
        return;
    }
    for (uint64_t i = 0; i < n / 4; i++) {
        uint32_t z = residual(bits_at(cur, i), bits_at(prev, i));
        memcpy(out + 4 * i, &z, 4);
    }
}

/* cur from the delta (in place) and the previous version. */
void bda_delta_decode(int dtype, uint8_t *cur, const uint8_t *prev, uint64_t n)
{
    if (dtype != BD_CKPT_F32) {
        for (uint64_t i = 0; i < n; i++)
            cur[i] ^= prev[i];
        return;
    }
    for (uint64_t i = 0; i < n / 4; i++) {
        uint32_t c = restore(bits_at(cur, i), bits_at(prev, i));
        memcpy(cur + 4 * i, &c, 4);
    }
}

/* ---- fitting prediction coefficients -------------------------------------- */

/* Element i of a fit: the change to predict y and its regressors u, v (v
 * 0 for a one-coefficient prediction), and d, one unit in the last place
 * of the reference; false to leave the element out. */
typedef bool (*fit_element)(const void *refs, const float *x, uint64_t i,
                            double *y, double *u, double *v, double *d);

/* Solves the 2x2 normal equations a c = b; one coefficient when the
 * references are (nearly) collinear, none when both are zero. */
static void solve2(const double a[3], const double b[2], float c[2])
{
    double det = a[0] * a[2] - a[1] * a[1], x = 0, y = 0;
    if (det > 1e-9 * a[0] * a[2])
        x = (b[0] * a[2] - b[1] * a[1]) / det, y = (a[0] * b[1] - a[1] * b[0]) / det;
    else if (a[0] > 0)
        x = b[0] / a[0];
    c[0] = isfinite(x) ? (float)x : 0.0f;
    c[1] = isfinite(y) ? (float)y : 0.0f;
}

/* One weighted least-squares pass: c minimising sum k_i (y - c0 u - c1 v)^2,
 * with k_i = 1 when reweight is false, else 1 / (r_i^2 + d_i^2) for the
 * residuals r_i of the c given. */
static void fit_pass(fit_element f, const void *refs, const float *x,
                     uint64_t n, bool reweight, float c[2])
{
    double a[3] = {0}, b[2] = {0};  /* a: the symmetric 2x2 (a00, a01, a11) */
    for (uint64_t i = 0; i < n; i++) {
        double y, u, v, d;
        if (!f(refs, x, i, &y, &u, &v, &d)
            || !isfinite(y) || !isfinite(u) || !isfinite(v))
            continue;
        double r = y - c[0] * u - c[1] * v;
        double k = reweight ? 1.0 / (r * r + d * d) : 1.0;
        a[0] += k * u * u, a[1] += k * u * v, a[2] += k * v * v;
        b[0] += k * u * y, b[1] += k * v * y;
    }
    solve2(a, b, c);
}

#define FIT_PASSES 4

/* Coefficients for coding x's residuals r from a prediction. A residual
 * costs about log2 of its size in units of the last place, so c minimises
 * sum log(r^2 + d^2) rather than sum r^2, which the few largest changes
 * rule: iteratively reweighted least squares from c (each pass weights by
 * 1 / (r^2 + d^2) at the previous c, and never increases that sum).
 * Elements that follow the prediction closely (a weight with no gradient,
 * moved by weight decay alone) then count for what they save. */
static void fit_log(fit_element f, const void *refs, const float *x,
                    uint64_t n, float c[2])
{
    for (int pass = 0; pass < FIT_PASSES; pass++)
        fit_pass(f, refs, x, n, true, c);
}

/* One unit in the last place of |x|, at least the smallest normal float's. */
static double ulp(float x)
{
    return fmax(fabs((double)x) * FLT_EPSILON, FLT_MIN);
}

/* ---- archive EMA predictions --------------------------------------------- */

/* The f32 tensor `name` of ck (which may be NULL) with t's size, or NULL. */
static const float *f32_ref(const bd_ckpt *ck, const char *name,
                            const bd_ckpt_tensor *t)
{
    const bd_ckpt_tensor *r = ck ? bd_ckpt_tensor_find(ck, name) : NULL;
    return r && r->data && r->dtype == BD_CKPT_F32 && r->nbytes == t->nbytes
         ? r->data : NULL;
}

/* Whether t is an f32 `ema.<p>` that may be predicted from weights <p>. */
static bool ema_of_weights(const bd_ckpt_tensor *t)
{
    return t->dtype == BD_CKPT_F32 && strncmp(t->name, "ema.", 4) == 0
        && strncmp(t->name + 4, "ema.", 4) != 0;  /* no chains of EMAs */
}

bool bda_ema_refs_find(const bd_ckpt *cur, const bd_ckpt *prev,
                       const bd_ckpt_tensor *t, bda_ema_refs *r)
{
    if (!ema_of_weights(t))
        return false;
    *r = (bda_ema_refs){.ema_prev = f32_ref(prev, t->name, t),
                        .w = f32_ref(cur, t->name + 4, t),
                        .w_prev = f32_ref(prev, t->name + 4, t)};
    return r->ema_prev && r->w && r->w_prev;
}

static bool ema_element(const void *refs, const float *ema, uint64_t i,
                        double *y, double *u, double *v, double *d)
{
    const bda_ema_refs *r = refs;
    double e = r->ema_prev[i];
    *y = ema[i] - e, *u = r->w[i] - e, *v = r->w_prev[i] - e;
    *d = ulp(r->ema_prev[i]);
    return true;
}

void bda_ema_fit(const float *ema, const bda_ema_refs *r, uint64_t n,
                 float c[2])
{
    c[0] = c[1] = 0.0f;
    fit_pass(ema_element, r, ema, n, false, c);
    fit_log(ema_element, r, ema, n, c);
}

/* The bits of prediction p, or of the reference where p is not finite
 * (NaN bits differ between machines). */
static uint32_t prediction_bits(float p, const float *reference)
{
    uint32_t bits;
    memcpy(&bits, isfinite(p) ? &p : reference, 4);
    return bits;
}

/* The predicted bits of element i of a coded tensor. */
typedef uint32_t (*predictor)(const void *refs, const float *c, uint64_t i);

static void predicted_encode(const float *x, predictor predict,
                             const void *refs, const float *c, uint8_t *out,
                             uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], 4);
        uint32_t z = residual(bits, predict(refs, c, i));
        memcpy(out + 4 * i, &z, 4);
    }
}

static void predicted_decode(uint8_t *x, predictor predict, const void *refs,
                             const float *c, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint32_t bits = restore(bits_at(x, i), predict(refs, c, i));
        memcpy(x + 4 * i, &bits, 4);
    }
}

static uint32_t ema_predict(const void *refs, const float *c, uint64_t i)
{
    const bda_ema_refs *r = refs;
    float e = r->ema_prev[i];
    float p = e + c[0] * (r->w[i] - e) + c[1] * (r->w_prev[i] - e);
    return prediction_bits(p, &r->ema_prev[i]);
}

void bda_ema_encode(const float *ema, const bda_ema_refs *r, const float c[2],
                    uint8_t *out, uint64_t n)
{
    predicted_encode(ema, ema_predict, r, c, out, n);
}

void bda_ema_decode(uint8_t *ema, const bda_ema_refs *r, const float c[2],
                    uint64_t n)
{
    predicted_decode(ema, ema_predict, r, c, n);
}

/* ---- archive key-ema predictions ----------------------------------------- */

const float *bda_ema_key_ref(const bd_ckpt *cur, const bd_ckpt_tensor *t)
{
    return ema_of_weights(t) ? f32_ref(cur, t->name + 4, t) : NULL;
}

static bool ema_key_element(const void *refs, const float *ema, uint64_t i,
                            double *y, double *u, double *v, double *d)
{
    const float *w = refs;
    *y = (double)ema[i] - w[i], *u = w[i], *v = 0;
    *d = ulp(w[i]);
    return true;
}

/* From the least-squares fit. An EMA of weights that decay geometrically
 * (no gradient) is a constant multiple of them, which w + c w predicts to
 * a few units in the last place. */
float bda_ema_key_fit(const float *ema, const float *w, uint64_t n)
{
    float c[2] = {0.0f, 0.0f};
    fit_pass(ema_key_element, w, ema, n, false, c);
    fit_log(ema_key_element, w, ema, n, c);
    return c[0];
}

static uint32_t ema_key_predict(const void *refs, const float *c, uint64_t i)
{
    const float *w = refs;
    float p = w[i] + c[0] * w[i];
    return prediction_bits(p, &w[i]);
}

void bda_ema_key_encode(const float *ema, const float *w, float c, uint8_t *out,
                        uint64_t n)
{
    predicted_encode(ema, ema_key_predict, w, &c, out, n);
}

void bda_ema_key_decode(uint8_t *ema, const float *w, float c, uint64_t n)
{
    predicted_decode(ema, ema_key_predict, w, &c, n);
}

/* ---- archive trend predictions ------------------------------------------- */

bool bda_trend_refs_find(const bd_ckpt *prev, const bd_ckpt *prev2,
                         const bd_ckpt_tensor *t, bda_trend_refs *r)
{
    if (t->dtype != BD_CKPT_F32)
        return false;
    *r = (bda_trend_refs){.w1 = f32_ref(prev, t->name, t),
                          .w2 = f32_ref(prev2, t->name, t)};
    return r->w1 && r->w2;
}

static bool trend_element(const void *refs, const float *x, uint64_t i,
                          double *y, double *u, double *v, double *d)
{
    const bda_trend_refs *r = refs;
    *y = (double)x[i] - r->w1[i], *u = (double)r->w1[i] - r->w2[i], *v = 0;
    *d = ulp(r->w1[i]);
    return true;
}

/* From c = 1, the straight line through the two previous versions. */
float bda_trend_fit(const float *x, const bda_trend_refs *r, uint64_t n)
{
    float c[2] = {1.0f, 0.0f};
    fit_log(trend_element, r, x, n, c);
    return c[0];
}

static uint32_t trend_predict(const void *refs, const float *c, uint64_t i)
{
    const bda_trend_refs *r = refs;
    float p = r->w1[i] + c[0] * (r->w1[i] - r->w2[i]);
    return prediction_bits(p, &r->w1[i]);
}

void bda_trend_encode(const float *x, const bda_trend_refs *r, float c,
                      uint8_t *out, uint64_t n)
{
    predicted_encode(x, trend_predict, r, &c, out, n);
}

void bda_trend_decode(uint8_t *x, const bda_trend_refs *r, float c, uint64_t n)
{
    predicted_decode(x, trend_predict, r, &c, n);
}

/* ---- split residuals ----------------------------------------------------- */

/* A residual's class: itself below 4, else 2 L - 2 + its second bit for
 * bit length L (4 .. 63); the bits below its two leading ones (L - 2) are
 * stored raw. The classes carry what is predictable (the size), the raw
 * bits are noise that no coder shrinks. */
#define SPLIT_CLASSES 64u

static uint8_t split_class(uint32_t z, unsigned *raw_bits)
{
    if (z < 4) {
        *raw_bits = 0;
        return (uint8_t)z;
    }
    unsigned len = 32u - (unsigned)__builtin_clz(z);
    *raw_bits = len - 2;
    return (uint8_t)(2 * len - 2 + (z >> (len - 2) & 1));
}

/* The raw bits a class carries below its leading bits, and those bits. */
static unsigned class_raw_bits(uint8_t k)
{
    return k < 4 ? 0 : (unsigned)(k >> 1) - 1;
}

static uint32_t class_top(uint8_t k)
{
    if (k < 4)
        return k;
    unsigned len = (unsigned)(k >> 1) + 1u;
    return 1u << (len - 1) | (uint32_t)(k & 1) << (len - 2);
}

typedef struct bit_writer {
    uint8_t *p;
    uint64_t acc;
    unsigned n;  /* bits in acc */
} bit_writer;

static void put_bits(bit_writer *b, uint32_t v, unsigned n)
{
    b->acc |= (uint64_t)v << b->n;
    b->n += n;
    for (; b->n >= 8; b->n -= 8, b->acc >>= 8)
        *b->p++ = (uint8_t)b->acc;
}

bd_status bda_split_encode(const uint8_t *residuals, uint64_t n, int level,
                           uint8_t **out, size_t *out_len)
{
    uint8_t *classes = malloc(n ? n : 1);
    if (!classes)
        return bd_fail(BD_E_NOMEM, "archive: cannot split %llu residuals",
                       (unsigned long long)n);
    uint64_t bits = 0;
    for (uint64_t i = 0; i < n; i++) {
        unsigned raw;
        classes[i] = split_class(bits_at(residuals, i), &raw);
        bits += raw;
    }
    uint8_t *frame;
    size_t frame_len;
    bd_status s = bd_zstd_compress(classes, n, level, NULL, 0, &frame, &frame_len);
    free(classes);
    BD_TRY(s);
    size_t len = 8 + frame_len + (size_t)((bits + 7) / 8);
    uint8_t *p = calloc(len, 1);
    if (!p) {
        free(frame);
        return bd_fail(BD_E_NOMEM, "archive: cannot split %llu residuals",
                       (unsigned long long)n);
    }
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)((uint64_t)frame_len >> (8 * i));
    memcpy(p + 8, frame, frame_len);
    free(frame);
    bit_writer b = {.p = p + 8 + frame_len};
    for (uint64_t i = 0; i < n; i++) {
        uint32_t z = bits_at(residuals, i);
        unsigned raw;
        split_class(z, &raw);
        put_bits(&b, z & ((1u << raw) - 1), raw);
    }
    put_bits(&b, 0, 7);  /* flush the last partial byte, zero padded */
    *out = p;
    *out_len = len;
    return BD_OK;
}

/* The raw bits the classes call for, checking each class. */
static bd_status split_bits(const uint8_t *classes, uint64_t n,
                            const char *where, uint64_t *bits)
{
    *bits = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (classes[i] >= SPLIT_CLASSES)
            return bd_fail(BD_E_FORMAT, "%s: residual class %u of element %llu"
                           " out of range (expected 0 to %u)", where, classes[i],
                           (unsigned long long)i, SPLIT_CLASSES - 1);
        *bits += class_raw_bits(classes[i]);
    }
    return BD_OK;
}

/* The residuals from their classes and the packed bits (checked to hold
 * exactly the bits they need, zero padded). */
static bd_status split_join(const uint8_t *classes, const uint8_t *packed,
                            uint64_t packed_len, uint64_t n, uint8_t *residuals,
                            const char *where)
{
    uint64_t bits;
    BD_TRY(split_bits(classes, n, where, &bits));
    if (packed_len != (bits + 7) / 8)
        return bd_fail(BD_E_FORMAT, "%s: low bits of %llu bytes (expected %llu:"
                       " the classes call for %llu bits)", where,
                       (unsigned long long)packed_len,
                       (unsigned long long)((bits + 7) / 8),
                       (unsigned long long)bits);
    if (bits % 8 && packed[packed_len - 1] >> (bits % 8))
        return bd_fail(BD_E_FORMAT, "%s: padding after the low bits is not zero"
                       " (last byte 0x%02x, %llu bits used)", where,
                       packed[packed_len - 1], (unsigned long long)(bits % 8));
    uint64_t acc = 0, at = 0;
    unsigned have = 0;
    for (uint64_t i = 0; i < n; i++) {
        unsigned raw = class_raw_bits(classes[i]);
        for (; have < raw; have += 8)
            acc |= (uint64_t)packed[at++] << have;
        uint32_t z = class_top(classes[i]) | (uint32_t)(acc & ((1ull << raw) - 1));
        acc >>= raw;
        have -= raw;
        memcpy(residuals + 4 * i, &z, 4);
    }
    return BD_OK;
}

bd_status bda_split_decode(const uint8_t *payload, uint64_t stored, uint64_t n,
                           uint8_t *residuals, const char *where)
{
    if (stored < 8)
        return bd_fail(BD_E_FORMAT, "%s: split payload of %llu bytes is shorter"
                       " than its 8-byte class frame size", where,
                       (unsigned long long)stored);
    uint64_t frame_len = bd_le64(payload);
    if (frame_len > stored - 8)
        return bd_fail(BD_E_FORMAT, "%s: class frame of %llu bytes runs past the"
                       " payload (%llu bytes after its size)", where,
                       (unsigned long long)frame_len,
                       (unsigned long long)(stored - 8));
    BD_TRY(bd_zstd_check(payload + 8, frame_len, n, where));
    uint8_t *classes = malloc(n ? n : 1);
    if (!classes)
        return bd_fail(BD_E_NOMEM, "%s: cannot allocate %llu bytes", where,
                       (unsigned long long)n);
    bd_status s = bd_zstd_decompress(payload + 8, frame_len, classes, n, NULL, 0,
                                     where);
    if (s == BD_OK)
        s = split_join(classes, payload + 8 + frame_len, stored - 8 - frame_len,
                       n, residuals, where);
    free(classes);
    return s;
}

/* The version of t in prev that t can be coded against, or NULL. */
const bd_ckpt_tensor *bda_previous(const bd_ckpt *prev,
                                   const bd_ckpt_tensor *t)
{
    const bd_ckpt_tensor *p = prev ? bd_ckpt_tensor_find(prev, t->name) : NULL;
    return p && p->data && p->dtype == t->dtype && p->nbytes == t->nbytes
         ? p : NULL;
}

/* ---- tensor blobs -------------------------------------------------------- */

bd_status bdc_blob_encode(const bd_ckpt_tensor *t, int codec, int filter,
                          int level, uint8_t **out, size_t *out_len)
{
    if (codec == BDC_CODEC_RAW) {
        uint8_t *copy = malloc(t->nbytes ? t->nbytes : 1);
        if (!copy)
            return bd_fail(BD_E_NOMEM, "ckpt: cannot copy tensor '%s'", t->name);
        memcpy(copy, t->data, t->nbytes);
        *out = copy;
        *out_len = t->nbytes;
        return BD_OK;
    }
    if (filter == BDC_FILTER_NONE)
        return bd_zstd_compress(t->data, t->nbytes, level, NULL, 0, out, out_len);
    size_t width = bdc_elem_size(t->dtype);
    uint8_t *shuffled = malloc(t->nbytes ? t->nbytes : 1);
    if (!shuffled)
        return bd_fail(BD_E_NOMEM, "ckpt: cannot shuffle tensor '%s'", t->name);
    bd_shuffle(t->data, shuffled, t->nbytes / width, width);
    bd_status s = bd_zstd_compress(shuffled, t->nbytes, level, NULL, 0, out,
                                   out_len);
    free(shuffled);
    return s;
}

bd_status bdc_blob_decode(bd_ckpt_tensor *t, const uint8_t *blob,
                          const char *where)
{
    const bd_ckpt_storage *st = &t->stored;
    if (st->codec == BDC_CODEC_ZSTD)
        BD_TRY(bd_zstd_check(blob, st->stored_size, t->nbytes, where));
    uint8_t *raw = malloc(t->nbytes ? t->nbytes : 1);
    if (!raw)
        return bd_fail(BD_E_NOMEM, "%s: cannot allocate %llu bytes", where,
                       (unsigned long long)t->nbytes);
    bd_status s = BD_OK;
    if (st->codec == BDC_CODEC_RAW)
        memcpy(raw, blob, t->nbytes);
    else
        s = bd_zstd_decompress(blob, st->stored_size, raw, t->nbytes, NULL, 0,
                               where);
    if (s == BD_OK && st->filter == BDC_FILTER_SHUFFLE) {
        size_t width = bdc_elem_size(t->dtype);
        uint8_t *plain = malloc(t->nbytes ? t->nbytes : 1);
        if (!plain)
            s = bd_fail(BD_E_NOMEM, "%s: cannot allocate %llu bytes", where,
                        (unsigned long long)t->nbytes);
        else
            bd_unshuffle(raw, plain, t->nbytes / width, width);
        free(raw);
        raw = plain;
    }
    if (s == BD_OK) {
        uint32_t crc = bd_crc32c(0, raw, t->nbytes);
        if (crc != st->crc32c)
            s = bd_fail(BD_E_FORMAT, "%s: crc32c mismatch of the raw bytes"
                        " (found 0x%08x, expected 0x%08x)", where, crc,
                        st->crc32c);
    }
    if (s != BD_OK) {
        free(raw);
        return s;
    }
    free((void *)t->data);
    t->data = raw;
    return BD_OK;
}

bool bd_ckpt_is_analysis(const bd_ckpt *ck)
{
    const bd_ckpt_kv *kind = bd_ckpt_kv_find(ck, "bd.kind");
    return kind && kind->type == BD_CKPT_STR
        && strcmp(kind->v.str, BDA_ANALYSIS) == 0;
}
