/* Spectral layout by block Lanczos with full reorthogonalisation. */
#include "spectral.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rand.h"

#define SPECTRAL_TOL 1e-4
#define CHECK_EVERY 4  /* Lanczos blocks between convergence checks */

/* A = D^-1/2 W D^-1/2 in CSR form, and its top eigenvector u0. */
typedef struct operator {
    int64_t        n;
    const int32_t *tail;
    int64_t       *start;  /* (n + 1) */
    double        *w;      /* (n_edges) scaled weights */
    double        *u0;     /* (n) sqrt(degree), unit length */
} operator;

static void operator_free(operator *op)
{
    free(op->start);
    free(op->w);
    free(op->u0);
}

/* Returns 0, -1 (memory) or -3 (a vertex without edges). */
static int operator_build(const int32_t *head, const int32_t *tail,
                          const float *w, int64_t n_edges, int64_t n,
                          operator *op)
{
    op->n = n;
    op->tail = tail;
    op->start = calloc((size_t)n + 1, sizeof *op->start);
    op->w = malloc((size_t)(n_edges ? n_edges : 1) * sizeof *op->w);
    op->u0 = calloc((size_t)n, sizeof *op->u0);
    if (!op->start || !op->w || !op->u0)
        return -1;
    for (int64_t e = 0; e < n_edges; e++) {
        op->start[head[e] + 1]++;
        op->u0[head[e]] += w[e];  /* degree, for now */
    }
    for (int64_t i = 0; i < n; i++) {
        op->start[i + 1] += op->start[i];
        if (op->u0[i] <= 0)
            return -3;
    }
    double norm = 0;
    for (int64_t i = 0; i < n; i++)
        norm += op->u0[i];
    for (int64_t e = 0; e < n_edges; e++)
        op->w[e] = w[e] / sqrt(op->u0[head[e]] * op->u0[tail[e]]);
    for (int64_t i = 0; i < n; i++)
        op->u0[i] = sqrt(op->u0[i] / norm);
    return 0;
}

/* Every vertex reachable from vertex 0 (breadth first)? */
static int connected(const operator *op)
{
    int64_t *queue = malloc((size_t)op->n * sizeof *queue);
    char *seen = calloc((size_t)op->n, 1);
    int64_t head = 0, tail = 0;
    if (queue && seen) {
        queue[tail++] = 0;
        seen[0] = 1;
        while (head < tail) {
            int64_t i = queue[head++];
            for (int64_t e = op->start[i]; e < op->start[i + 1]; e++)
                if (!seen[op->tail[e]]) {
                    seen[op->tail[e]] = 1;
                    queue[tail++] = op->tail[e];
                }
        }
    }
    free(queue);
    free(seen);
    return tail == op->n;
}

/* y (n, b) = A x (n, b) */
static void apply(const operator *op, const double *x, double *y, int b)
{
    for (int64_t i = 0; i < op->n; i++) {
        for (int c = 0; c < b; c++)
            y[i * b + c] = 0;
        for (int64_t e = op->start[i]; e < op->start[i + 1]; e++)
            for (int c = 0; c < b; c++)
                y[i * b + c] += op->w[e] * x[(int64_t)op->tail[e] * b + c];
    }
}

/* Twice: w (n, b) -= u0 (u0^T w) and -= q (q^T w), q the first cols
 * columns of basis (n, ld). coef: (cols + 1) * b scratch. */
static void reorthogonalize(const operator *op, const double *basis, int ld,
                            int cols, double *w, int b, double *coef)
{
    const int64_t n = op->n;
    for (int pass = 0; pass < 2; pass++) {
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, b, 1.0, w, b, op->u0, 1,
                    0.0, coef, 1);
        cblas_dger(CblasRowMajor, (int)n, b, -1.0, op->u0, 1, coef, 1, w, b);
        if (cols == 0)
            continue;
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, b, (int)n,
                    1.0, basis, ld, w, b, 0.0, coef, b);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, b, cols,
                    -1.0, basis, ld, coef, b, 1.0, w, b);
    }
}

/* w (n, b) = q r with q orthonormal, into columns [c0, c0 + b) of basis;
 * r (b, b) upper triangular. Returns 0, -1 (memory), or 1 when w has lost
 * rank (the Krylov space is exhausted). */
static int qr_into(double *w, int64_t n, int b, double *basis, int ld, int c0,
                   double *r)
{
    double tau[64];
    if (LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)n, b, w, b, tau) != 0)
        return -1;
    double big = 0;
    for (int i = 0; i < b; i++)
        for (int j = 0; j < b; j++) {
            r[i * b + j] = j >= i ? w[i * b + j] : 0.0;
            big = fmax(big, fabs(r[i * b + j]));
        }
    for (int i = 0; i < b; i++)
        if (fabs(r[i * b + i]) <= 1e-10 * fmax(big, 1e-300))
            return 1;
    if (LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)n, b, b, w, b, tau) != 0)
        return -1;
    for (int64_t i = 0; i < n; i++)
        memcpy(basis + i * ld + c0, w + i * b, (size_t)b * sizeof *w);
    return 0;
}

/* The top `want` eigenpairs of t (cols x cols, leading dim ld): s (cols,
 * want), in ascending order of eigenvalue. */
static int ritz(const double *t, int ld, int cols, int want, double *s)
{
    double *a = malloc((size_t)cols * cols * sizeof *a);
    double *ev = malloc((size_t)cols * sizeof *ev);
    lapack_int *support = malloc((size_t)(2 * want) * sizeof *support);
    lapack_int found = 0;
    int rc = a && ev && support ? 0 : -1;
    for (int i = 0; rc == 0 && i < cols; i++)
        memcpy(a + (int64_t)i * cols, t + (int64_t)i * ld, (size_t)cols * sizeof *a);
    if (rc == 0 && LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'U', cols, a, cols,
                                  0, 0, cols - want + 1, cols, 0, &found, ev, s,
                                  want, support) != 0)
        rc = -1;
    free(a);
    free(ev);
    free(support);
    return rc;
}

/* Largest residual |r s_last| of the Ritz vectors s (cols, want), r the
 * coupling to the next block. */
static double residual(const double *r, int b, const double *s, int cols,
                       int want)
{
    double worst = 0;
    for (int k = 0; k < want; k++) {
        double sum = 0;
        for (int i = 0; i < b; i++) {
            double v = 0;
            for (int j = 0; j < b; j++)
                v += r[i * b + j] * s[(int64_t)(cols - b + j) * want + k];
            sum += v * v;
        }
        worst = fmax(worst, sqrt(sum));
    }
    return worst;
}

typedef struct lanczos {
    int     b, ld;   /* block size, basis columns of room */
    double *basis;   /* (n, ld) */
    double *t;       /* (ld, ld) block tridiagonal */
    double *x, *w;   /* (n, b) */
    double *coef;    /* (ld + 1, b) */
    double *r;       /* (b, b) */
    double *s;       /* (ld, dims) Ritz vectors */
} lanczos;

/* Run blocks until converged; returns the basis size, or -1 (memory). */
static int run(const operator *op, lanczos *lz, int dims, uint64_t seed)
{
    const int64_t n = op->n;
    const int b = lz->b;
    rand_state rs = {seed ^ 0x5BEC7A11u};
    for (int64_t i = 0; i < n * b; i++)
        lz->w[i] = rand_normal(&rs);
    reorthogonalize(op, lz->basis, lz->ld, 0, lz->w, b, lz->coef);
    if (qr_into(lz->w, n, b, lz->basis, lz->ld, 0, lz->r) != 0)
        return -1;
    for (int c0 = 0;; c0 += b) {
        for (int64_t i = 0; i < n; i++)
            memcpy(lz->x + i * b, lz->basis + i * lz->ld + c0, (size_t)b * sizeof *lz->x);
        apply(op, lz->x, lz->w, b);
        /* T[c0.., c0..] = x^T A x */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, b, b, (int)n, 1.0,
                    lz->x, b, lz->w, b, 0.0, lz->t + (int64_t)c0 * lz->ld + c0,
                    lz->ld);
        reorthogonalize(op, lz->basis, lz->ld, c0 + b, lz->w, b, lz->coef);
        if (c0 + 2 * b > lz->ld)
            return c0 + b;
        int rc = qr_into(lz->w, n, b, lz->basis, lz->ld, c0 + b, lz->r);
        if (rc != 0)
            return rc > 0 ? c0 + b : -1;
        for (int i = 0; i < b; i++)
            for (int j = 0; j < b; j++) {
                lz->t[(int64_t)(c0 + b + i) * lz->ld + c0 + j] = lz->r[i * b + j];
                lz->t[(int64_t)(c0 + j) * lz->ld + c0 + b + i] = lz->r[i * b + j];
            }
        if ((c0 / b + 1) % CHECK_EVERY == 0) {
            if (ritz(lz->t, lz->ld, c0 + b, dims, lz->s) != 0)
                return -1;
            if (residual(lz->r, b, lz->s, c0 + b, dims) < SPECTRAL_TOL)
                return c0 + b;
        }
    }
}

int spectral_layout(const int32_t *head, const int32_t *tail, const float *w,
                    int64_t n_edges, int64_t n, int dims, uint64_t seed,
                    float *out)
{
    const int b = dims + 1;
    if (n < dims + 2 || b > 64)
        return -3;
    operator op = {0};
    int rc = operator_build(head, tail, w, n_edges, n, &op);
    if (rc == 0 && !connected(&op))
        rc = -3;
    lanczos lz = {.b = b};
    int64_t room = n - 1 < SPECTRAL_MAX_BASIS ? n - 1 : SPECTRAL_MAX_BASIS;
    lz.ld = (int)(room / b * b);
    if (rc == 0) {
        lz.basis = calloc((size_t)(n * lz.ld), sizeof *lz.basis);
        lz.t = calloc((size_t)lz.ld * lz.ld, sizeof *lz.t);
        lz.x = malloc((size_t)(n * b) * sizeof *lz.x);
        lz.w = malloc((size_t)(n * b) * sizeof *lz.w);
        lz.coef = malloc((size_t)(lz.ld + 1) * b * sizeof *lz.coef);
        lz.r = malloc((size_t)b * b * sizeof *lz.r);
        lz.s = malloc((size_t)lz.ld * dims * sizeof *lz.s);
        rc = lz.basis && lz.t && lz.x && lz.w && lz.coef && lz.r && lz.s ? 0 : -1;
    }
    int cols = rc == 0 && lz.ld >= b ? run(&op, &lz, dims, seed) : -1;
    if (rc == 0 && (cols < dims || ritz(lz.t, lz.ld, cols, dims, lz.s) != 0))
        rc = -1;
    /* out = basis[:, :cols] s, highest eigenvalue (slowest mode) first */
    for (int64_t i = 0; rc == 0 && i < n; i++)
        for (int k = 0; k < dims; k++) {
            double v = 0;
            for (int c = 0; c < cols; c++)
                v += lz.basis[i * lz.ld + c] * lz.s[(int64_t)c * dims + dims - 1 - k];
            out[i * dims + k] = (float)v;
        }
    operator_free(&op);
    free(lz.basis);
    free(lz.t);
    free(lz.x);
    free(lz.w);
    free(lz.coef);
    free(lz.r);
    free(lz.s);
    return rc;
}
