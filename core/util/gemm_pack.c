/* Packing for bd's sgemm (gemm.h): a block of op(A) or op(B) copied into
 * lane-major panels (kc, w), the layout the kernel streams. Every load
 * past the matrix's last lane or depth is masked off: AVX-512 masked loads
 * do not touch the memory of masked lanes (no fault, no read), so a matrix
 * may end exactly at its last element (test_gemm puts it against an
 * unmapped page). */
#include "gemm.h"

#ifdef BD_GEMM_AVX512
#include <immintrin.h>

#define GEMM_TARGET __attribute__((target("avx512f")))

/* The first n of 16 lanes (n clamped to 0..16). */
static inline __mmask16 first_lanes(int n)
{
    return n <= 0 ? 0 : n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1u);
}

/* dst (kc, w): each depth's lanes copied, masked past `lanes`. */
GEMM_TARGET void gemm_pack_lanes(const float *src, int64_t ld, int lanes,
                                 int kc, int w, float *dst)
{
    for (int p = 0; p < kc; p++) {
        const float *s = src + p * ld;
        float *d = dst + (int64_t)p * w;
        for (int l = 0; l < w; l += 16) {
            const __mmask16 in = first_lanes(lanes - l);
            const __m512 v = in ? _mm512_maskz_loadu_ps(in, s + l)
                                : _mm512_setzero_ps();
            _mm512_mask_storeu_ps(d + l, first_lanes(w - l), v);
        }
    }
}

/* r[i] = 16 depths of lane i (i < 8) -> r[j] = lanes 0..7 at depth 2j,
 * then lanes 0..7 at depth 2j + 1. Per 128-bit lane q of the 16 depths
 * (depths 4q..4q+3): pairs of lanes interleaved, then quads, then the
 * 128-bit lanes regrouped. */
static inline GEMM_TARGET void transpose_8x16(__m512 r[8])
{
    __m512 t[8], u[8], h[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[d + 4 g], d = 0..3: lanes 4g..4g+3 at depth 4q + d, in 128-bit lane q */
    for (int g = 0; g < 2; g++)
        for (int d = 0; d < 4; d += 2) {
            const __m512 lo = t[4 * g + d / 2], hi = t[4 * g + 2 + d / 2];
            u[d + 4 * g] = _mm512_shuffle_ps(lo, hi, 0x44);
            u[d + 1 + 4 * g] = _mm512_shuffle_ps(lo, hi, 0xEE);
        }
    /* h[d]: lanes 0..3 then 4..7 at depths 4q + d for q = 0, 1;
     * h[d + 4]: the same for q = 2, 3 */
    for (int d = 0; d < 4; d++) {
        h[d] = _mm512_shuffle_f32x4(u[d], u[d + 4], _MM_SHUFFLE(1, 0, 1, 0));
        h[d + 4] = _mm512_shuffle_f32x4(u[d], u[d + 4], _MM_SHUFFLE(3, 2, 3, 2));
    }
    /* depth 2j = 4q + d with q = j / 2, d = 2 (j % 2) */
    for (int j = 0; j < 8; j++) {
        const int d = 2 * (j & 1), q = j >> 1, s = (q >> 1) * 4 + d;
        r[j] = (q & 1) ? _mm512_shuffle_f32x4(h[s], h[s + 1], _MM_SHUFFLE(3, 1, 3, 1))
                       : _mm512_shuffle_f32x4(h[s], h[s + 1], _MM_SHUFFLE(2, 0, 2, 0));
    }
}

/* dst (kc, w): 8 lanes x 16 depths at a time, read as 8 rows (masked past
 * kc, zero past `lanes`), transposed, stored as half vectors. */
GEMM_TARGET void gemm_pack_depth(const float *src, int64_t ld, int lanes,
                                 int kc, int w, float *dst)
{
    for (int l0 = 0; l0 < w; l0 += 8)
        for (int p0 = 0; p0 < kc; p0 += 16) {
            const __mmask16 depths = first_lanes(kc - p0);
            __m512 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = l0 + i < lanes
                     ? _mm512_maskz_loadu_ps(depths, src + (l0 + i) * ld + p0)
                     : _mm512_setzero_ps();
            transpose_8x16(r);
            for (int j = 0; j < 8 && p0 + 2 * j < kc; j++) {
                float *d = dst + (int64_t)(p0 + 2 * j) * w + l0;
                _mm512_mask_storeu_ps(d, 0x00FF, r[j]);
                if (p0 + 2 * j + 1 < kc) /* lanes 8..15 land at d + w */
                    _mm512_mask_storeu_ps(d + w - 8, 0xFF00, r[j]);
            }
        }
}
#endif
