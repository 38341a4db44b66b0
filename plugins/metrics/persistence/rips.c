/* Vietoris-Rips persistence in dimensions 0 and 1 (rips.h). */
#include "rips.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void rips_distances(const float *x, int64_t n, int64_t d, double *dist)
{
    for (int64_t i = 0; i < n; i++) {
        dist[i * n + i] = 0;
        for (int64_t j = i + 1; j < n; j++) {
            double s = 0;
            for (int64_t k = 0; k < d; k++) {
                double diff = (double)x[i * d + k] - (double)x[j * d + k];
                s += diff * diff;
            }
            dist[i * n + j] = dist[j * n + i] = sqrt(s);
        }
    }
}

double rips_enclosing_radius(const double *dist, int64_t n)
{
    double best = n < 2 ? 0 : INFINITY;
    for (int64_t i = 0; n >= 2 && i < n; i++) {
        double far = 0;
        for (int64_t j = 0; j < n; j++)
            far = dist[i * n + j] > far ? dist[i * n + j] : far;
        best = far < best ? far : best;
    }
    return best;
}

/* ---- the filtration's edges ------------------------------------------------ */

typedef struct edge {
    double  len;
    int32_t i, j;  /* i < j */
} edge;

typedef struct filtration {
    int64_t  n, m;
    edge    *e;     /* (m) in filtration order */
    int32_t *rank;  /* (n, n): the position of edge {i, j} in e, -1 when
                       longer than the end (and on the diagonal) */
} filtration;

static int edge_order(const void *pa, const void *pb)
{
    const edge *a = pa, *b = pb;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    if (a->i != b->i)
        return a->i < b->i ? -1 : 1;
    return (a->j > b->j) - (a->j < b->j);
}

static void filtration_free(filtration *f)
{
    free(f->e);
    free(f->rank);
}

static int filtration_build(const double *dist, int64_t n, double end,
                            filtration *f)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++)
            f->m += dist[i * n + j] <= end;
    f->e = malloc((size_t)(f->m ? f->m : 1) * sizeof *f->e);
    f->rank = malloc((size_t)(n * n) * sizeof *f->rank);
    if (!f->e || !f->rank)
        return -1;
    int64_t m = 0;
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = i + 1; j < n; j++)
            if (dist[i * n + j] <= end)
                f->e[m++] = (edge){dist[i * n + j], i, j};
    qsort(f->e, (size_t)m, sizeof *f->e, edge_order);
    for (int64_t k = 0; k < n * n; k++)
        f->rank[k] = -1;
    for (int32_t r = 0; r < m; r++) {
        f->rank[f->e[r].i * n + f->e[r].j] = r;
        f->rank[f->e[r].j * n + f->e[r].i] = r;
    }
    return 0;
}

/* ---- H0: union-find ---------------------------------------------------------- */

static int32_t root(int32_t *parent, int32_t v)
{
    while (parent[v] != v) {
        parent[v] = parent[parent[v]];
        v = parent[v];
    }
    return v;
}

/* The H0 bars into b->h0, and tree[r] = 1 for the edges that join two
 * components (the spanning tree). Returns 0 or -1 (memory). */
static int zero_dim(const filtration *f, rips_bars *b, bool *tree)
{
    int32_t *parent = malloc((size_t)f->n * sizeof *parent);
    b->h0 = malloc((size_t)f->n * sizeof *b->h0);
    if (!parent || !b->h0) {
        free(parent);
        return -1;
    }
    for (int32_t v = 0; v < f->n; v++)
        parent[v] = v;
    for (int64_t r = 0; r < f->m; r++) {
        int32_t a = root(parent, f->e[r].i), c = root(parent, f->e[r].j);
        tree[r] = a != c;
        if (a != c) {
            parent[a > c ? a : c] = a < c ? a : c;
            b->h0[b->n0++] = (rips_bar){0, f->e[r].len};
        }
    }
    for (int32_t v = 0; v < f->n; v++)
        if (parent[v] == v)
            b->h0[b->n0++] = (rips_bar){0, INFINITY};
    free(parent);
    return 0;
}

/* ---- H1: the coboundary reduction ------------------------------------------------ */

/* A triangle's key: (rank of its latest edge) n + (the vertex opposite that
 * edge); key order is the filtration's order of triangles. */
static int64_t key_edge(const filtration *f, int64_t key) { return key / f->n; }

/* A growable array of triangle keys or of edge ranks. */
typedef struct keys {
    int64_t *v;
    int64_t  len, cap;
} keys;

static int reserve(void **v, int64_t *cap, int64_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    int64_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *grown = realloc(*v, (size_t)c * size);
    if (!grown)
        return -1;
    *v = grown;
    *cap = c;
    return 0;
}

/* The cofaces of edge r inside the filtration into out (unsorted); their
 * count. out holds n entries. */
static int64_t cofaces(const filtration *f, int32_t r, int64_t *out)
{
    const int64_t n = f->n;
    const int32_t i = f->e[r].i, j = f->e[r].j;
    int64_t c = 0;
    for (int32_t k = 0; k < n; k++) {
        int32_t a = f->rank[i * n + k], b = f->rank[j * n + k];
        if (k == i || k == j || a < 0 || b < 0)
            continue;
        int32_t top = r, opposite = k;
        if (a > top)
            top = a, opposite = j;
        if (b > top)
            top = b, opposite = i;
        out[c++] = (int64_t)top * n + opposite;
    }
    return c;
}

/* The pivots found so far: triangle key -> edge column, open addressing. */
typedef struct pivots {
    int64_t *key;  /* -1: empty */
    int32_t *col;
    int64_t  mask;
} pivots;

static int64_t slot_of(const pivots *p, int64_t key)
{
    uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ull;
    int64_t s = (int64_t)(h >> 20) & p->mask;
    while (p->key[s] != -1 && p->key[s] != key)
        s = (s + 1) & p->mask;
    return s;
}

static int32_t pivot_find(const pivots *p, int64_t key)
{
    int64_t s = slot_of(p, key);
    return p->key[s] == key ? p->col[s] : -1;
}

/* Everything the reduction keeps: the pivots, and each paired column as
 * the edges whose coboundaries sum to it (v[start[r] .. + count[r]]). */
typedef struct reduction {
    const filtration *f;
    pivots   piv;
    keys     pool;
    int64_t *start;
    int32_t *count;
    keys     work, cob;      /* the column being reduced (a heap); cofaces */
    keys     sum, sum_tmp;    /* the edges summed into it */
} reduction;

/* a ^= b for sorted sets of edges (Z/2 sum), through tmp. */
static int xor_sorted(keys *a, const int64_t *b, int64_t nb, keys *tmp)
{
    if (reserve((void **)&tmp->v, &tmp->cap, a->len + nb, sizeof *tmp->v))
        return -1;
    int64_t i = 0, j = 0, o = 0;
    while (i < a->len || j < nb) {
        if (j == nb || (i < a->len && a->v[i] < b[j]))
            tmp->v[o++] = a->v[i++];
        else if (i == a->len || b[j] < a->v[i])
            tmp->v[o++] = b[j++];
        else
            i++, j++;
    }
    tmp->len = o;
    keys swap = *a;
    *a = *tmp;
    *tmp = swap;
    return 0;
}

/* ---- the column being reduced: a binary min-heap of keys, summed lazily
 * (a key pushed an even number of times cancels when it reaches the top) */

static int heap_push(keys *h, int64_t key)
{
    if (reserve((void **)&h->v, &h->cap, h->len + 1, sizeof *h->v))
        return -1;
    int64_t i = h->len++;
    while (i > 0 && h->v[(i - 1) / 2] > key) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = key;
    return 0;
}

static int64_t heap_pop(keys *h)
{
    int64_t top = h->v[0], last = h->v[--h->len], i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= h->len)
            break;
        if (c + 1 < h->len && h->v[c + 1] < h->v[c])
            c++;
        if (h->v[c] >= last)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->len > 0)
        h->v[i] = last;
    return top;
}

/* The smallest key of the sum (-1 when it is zero); it stays in the heap. */
static int64_t heap_pivot(keys *h)
{
    while (h->len > 0) {
        int64_t k = heap_pop(h);
        if (h->len > 0 && h->v[0] == k) {
            heap_pop(h);
            continue;
        }
        heap_push(h, k);  /* cannot fail: one was just popped */
        return k;
    }
    return -1;
}

/* Push the cofaces of edge r onto the heap. */
static int push_cofaces(reduction *rd, int32_t r)
{
    int64_t len = cofaces(rd->f, r, rd->cob.v);
    for (int64_t k = 0; k < len; k++)
        if (heap_push(&rd->work, rd->cob.v[k]))
            return -1;
    return 0;
}

/* work += the reduced column of edge c (the sum of its edges' cofaces). */
static int add_column(reduction *rd, int32_t c)
{
    const int64_t *edges = rd->pool.v + rd->start[c];
    for (int32_t k = 0; k < rd->count[c]; k++)
        if (push_cofaces(rd, (int32_t)edges[k]))
            return -1;
    return xor_sorted(&rd->sum, edges, rd->count[c], &rd->sum_tmp);
}

/* Reduce the column of edge r: -1 on memory, else 0 with *low the pivot
 * triangle's key, or -1 when the column is zero. */
static int reduce(reduction *rd, int32_t r, int64_t *low)
{
    int64_t len = cofaces(rd->f, r, rd->cob.v), first = -1;
    for (int64_t k = 0; k < len; k++)
        if (first < 0 || rd->cob.v[k] < first)
            first = rd->cob.v[k];
    rd->sum.v[0] = r;
    rd->sum.len = 1;
    *low = first;
    if (first < 0 || pivot_find(&rd->piv, first) < 0)
        return 0;  /* zero, or its pivot is new: reduced as it is */
    rd->work.len = 0;
    if (push_cofaces(rd, r))
        return -1;
    int32_t c;
    while ((*low = heap_pivot(&rd->work)) >= 0
           && (c = pivot_find(&rd->piv, *low)) >= 0)
        if (add_column(rd, c))
            return -1;
    return 0;
}

/* Record edge r's column as paired with triangle `low`. */
static int keep(reduction *rd, int32_t r, int64_t low)
{
    if (reserve((void **)&rd->pool.v, &rd->pool.cap, rd->pool.len + rd->sum.len,
                sizeof *rd->pool.v))
        return -1;
    rd->start[r] = rd->pool.len;
    rd->count[r] = (int32_t)rd->sum.len;
    memcpy(rd->pool.v + rd->pool.len, rd->sum.v, (size_t)rd->sum.len * sizeof *rd->sum.v);
    rd->pool.len += rd->sum.len;
    int64_t s = slot_of(&rd->piv, low);
    rd->piv.key[s] = low;
    rd->piv.col[s] = r;
    return 0;
}

static void reduction_free(reduction *rd)
{
    free(rd->piv.key);
    free(rd->piv.col);
    free(rd->pool.v);
    free(rd->start);
    free(rd->count);
    free(rd->work.v);
    free(rd->cob.v);
    free(rd->sum.v);
    free(rd->sum_tmp.v);
}

static int reduction_init(reduction *rd, const filtration *f)
{
    memset(rd, 0, sizeof *rd);
    rd->f = f;
    int64_t slots = 64;
    while (slots < 2 * f->m)
        slots *= 2;
    rd->piv.mask = slots - 1;
    rd->piv.key = malloc((size_t)slots * sizeof *rd->piv.key);
    rd->piv.col = malloc((size_t)slots * sizeof *rd->piv.col);
    rd->start = malloc((size_t)(f->m ? f->m : 1) * sizeof *rd->start);
    rd->count = malloc((size_t)(f->m ? f->m : 1) * sizeof *rd->count);
    if (!rd->piv.key || !rd->piv.col || !rd->start || !rd->count
        || reserve((void **)&rd->cob.v, &rd->cob.cap, f->n, sizeof(int64_t))
        || reserve((void **)&rd->work.v, &rd->work.cap, f->n, sizeof(int64_t))
        || reserve((void **)&rd->sum.v, &rd->sum.cap, 1, sizeof(int64_t)))
        return -1;
    for (int64_t s = 0; s < slots; s++)
        rd->piv.key[s] = -1;
    return 0;
}

static int bar_longer(const void *pa, const void *pb)
{
    const rips_bar *a = pa, *b = pb;
    double la = a->death - a->birth, lb = b->death - b->birth;
    if (la != lb)
        return la > lb ? -1 : 1;
    return (a->birth > b->birth) - (a->birth < b->birth);
}

/* The H1 bars into b->h1: every edge outside the tree, latest first. */
static int one_dim(const filtration *f, const bool *tree, rips_bars *b)
{
    reduction rd;
    int rc = reduction_init(&rd, f);
    b->h1 = malloc((size_t)(f->m ? f->m : 1) * sizeof *b->h1);
    rc = rc || !b->h1 ? -1 : 0;
    for (int32_t r = (int32_t)f->m - 1; rc == 0 && r >= 0; r--) {
        int64_t low;
        if (tree[r])
            continue;  /* cleared: paired with a vertex */
        rc = reduce(&rd, r, &low);
        double birth = f->e[r].len;
        double death = low < 0 ? INFINITY : f->e[key_edge(f, low)].len;
        if (rc == 0 && low >= 0)
            rc = keep(&rd, r, low);
        if (death > birth)
            b->h1[b->n1++] = (rips_bar){birth, death};
    }
    reduction_free(&rd);
    if (rc == 0)
        qsort(b->h1, (size_t)b->n1, sizeof *b->h1, bar_longer);
    return rc;
}

int rips_persistence(const double *dist, int64_t n, double end, rips_bars *out)
{
    memset(out, 0, sizeof *out);
    out->end = end;
    filtration f;
    int rc = filtration_build(dist, n, end, &f);
    bool *tree = rc == 0 ? malloc((size_t)(f.m ? f.m : 1) * sizeof *tree) : NULL;
    out->edges = f.m;
    rc = rc || !tree ? -1 : zero_dim(&f, out, tree);
    if (rc == 0)
        rc = one_dim(&f, tree, out);
    free(tree);
    filtration_free(&f);
    return rc;
}

void rips_bars_free(rips_bars *b)
{
    free(b->h0);
    free(b->h1);
    b->h0 = b->h1 = NULL;
}
