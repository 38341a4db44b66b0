/* Union-find over close pairs, found cell by cell. */
#include "cluster.h"

#include <math.h>
#include <stdlib.h>

/* ---- union-find (path halving, union by size) ------------------------------ */

static int64_t find(int64_t *parent, int64_t i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

static void unite(int64_t *parent, int64_t *size, int64_t a, int64_t b)
{
    a = find(parent, a);
    b = find(parent, b);
    if (a == b)
        return;
    if (size[a] < size[b]) {
        int64_t t = a;
        a = b;
        b = t;
    }
    parent[b] = a;
    size[a] += size[b];
}

/* ---- cells ----------------------------------------------------------------- */

/* Points sorted by cell: cell (cx, cy) holds order[start[c] .. start[c+1]),
 * c = cy * nx + cx. Cells are at least `side` wide, so every pair closer
 * than `side` lies in the same or adjacent cells. */
typedef struct grid {
    double   x0, y0, side;
    int64_t  nx, ny;
    int64_t *start, *order, *cell;
} grid;

static int64_t cell_of(const grid *g, double x, double y)
{
    int64_t cx = (int64_t)((x - g->x0) / g->side);
    int64_t cy = (int64_t)((y - g->y0) / g->side);
    cx = cx < g->nx ? cx : g->nx - 1;
    cy = cy < g->ny ? cy : g->ny - 1;
    return cy * g->nx + cx;
}

/* Cell side: the cutoff, widened so there are at most about 4 n cells. */
static int grid_build(grid *g, const float *xy, int64_t n, double cutoff)
{
    double x1 = -INFINITY, y1 = -INFINITY;
    g->x0 = g->y0 = INFINITY;
    for (int64_t i = 0; i < n; i++) {
        g->x0 = fmin(g->x0, xy[2 * i]);
        g->y0 = fmin(g->y0, xy[2 * i + 1]);
        x1 = fmax(x1, xy[2 * i]);
        y1 = fmax(y1, xy[2 * i + 1]);
    }
    double w = x1 - g->x0, h = y1 - g->y0;
    g->side = fmax(cutoff, sqrt(w * h / (double)n));
    g->side = fmax(g->side, fmax(w, h) / (double)(4 * n));
    g->nx = (int64_t)(w / g->side) + 1;
    g->ny = (int64_t)(h / g->side) + 1;
    int64_t cells = g->nx * g->ny;
    g->start = calloc((size_t)cells + 1, sizeof(int64_t));
    g->order = malloc((size_t)n * sizeof(int64_t));
    g->cell = malloc((size_t)n * sizeof(int64_t));
    if (!g->start || !g->order || !g->cell)
        return -1;
    for (int64_t i = 0; i < n; i++) {
        g->cell[i] = cell_of(g, xy[2 * i], xy[2 * i + 1]);
        g->start[g->cell[i] + 1]++;
    }
    for (int64_t c = 0; c < cells; c++)
        g->start[c + 1] += g->start[c];
    for (int64_t i = 0; i < n; i++)  /* start[c] walks to the end of c */
        g->order[g->start[g->cell[i]]++] = i;
    for (int64_t c = cells; c > 0; c--)  /* so shift it back */
        g->start[c] = g->start[c - 1];
    g->start[0] = 0;
    return 0;
}

static void grid_free(grid *g)
{
    free(g->start);
    free(g->order);
    free(g->cell);
}

/* Link point i with the later points of cell c closer than the cutoff. */
static void link_cell(const grid *g, const float *xy, int64_t i, int64_t c,
                      double cut2, int64_t *parent, int64_t *size,
                      int64_t *links)
{
    for (int64_t k = g->start[c]; k < g->start[c + 1]; k++) {
        int64_t j = g->order[k];
        if (j <= i)
            continue;
        double dx = xy[2 * i] - xy[2 * j], dy = xy[2 * i + 1] - xy[2 * j + 1];
        if (dx * dx + dy * dy < cut2) {
            (*links)++;
            unite(parent, size, i, j);
        }
    }
}

int clusters_find(const float *xy, int64_t n, double cutoff, clusters *c)
{
    *c = (clusters){.n = n};
    int64_t *size = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    c->root = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    grid g = {0};
    int rc = size && c->root ? 0 : -1;
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        c->root[i] = i;
        size[i] = 1;
    }
    if (rc == 0 && n > 0 && cutoff > 0)
        rc = grid_build(&g, xy, n, cutoff);
    for (int64_t i = 0; rc == 0 && cutoff > 0 && i < n; i++) {
        int64_t cx = g.cell[i] % g.nx, cy = g.cell[i] / g.nx;
        for (int64_t y = cy - 1; y <= cy + 1; y++)
            for (int64_t x = cx - 1; x <= cx + 1; x++)
                if (x >= 0 && x < g.nx && y >= 0 && y < g.ny)
                    link_cell(&g, xy, i, y * g.nx + x, cutoff * cutoff,
                              c->root, size, &c->links);
    }
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        int64_t r = find(c->root, i);
        c->root[i] = r;
        if (r == i) {
            c->count++;
            c->largest = size[i] > c->largest ? size[i] : c->largest;
        }
    }
    grid_free(&g);
    free(size);
    if (rc != 0)
        clusters_free(c);
    return rc;
}

void clusters_free(clusters *c)
{
    free(c->root);
    c->root = NULL;
}
