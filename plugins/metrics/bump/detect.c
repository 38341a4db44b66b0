/* Threshold, connected components by flood fill, windowed centroid; on a
 * torus, neighbours and windows wrap around the edges. */
#include "detect.h"

#include <math.h>

/* The index of pixel (row i, column j); on a torus wrapped onto the image,
 * else -1 outside it. */
static int pixel_at(int h, int w, int periodic, int i, int j)
{
    if (periodic) {
        i = (i % h + h) % h;
        j = (j % w + w) % w;
    } else if (i < 0 || i >= h || j < 0 || j >= w) {
        return -1;
    }
    return i * w + j;
}

/* Label the component of pixel `seed` as `id`; returns its pixel count and
 * adds its weight (sum of (v + 1) / 2) to *mass. */
static int flood(const float *img, int h, int w, const bump_params *p,
                 bump_work *wk, int seed, int id, double *mass)
{
    int top = 0, size = 0;
    wk->label[seed] = id;
    wk->stack[top++] = seed;
    while (top > 0) {
        int at = wk->stack[--top], i = at / w, j = at % w;
        size++;
        *mass += (img[at] + 1.0) / 2;
        for (int di = -1; di <= 1; di++)
            for (int dj = -1; dj <= 1; dj++) {
                int nb = pixel_at(h, w, p->periodic, i + di, j + dj);
                if ((di == 0 && dj == 0) || nb < 0
                    || (p->connectivity == 4 && di != 0 && dj != 0))
                    continue;
                if (wk->label[nb] == -2 && img[nb] > p->threshold) {
                    wk->label[nb] = id;
                    wk->stack[top++] = nb;
                }
            }
    }
    return size;
}

/* True when a pixel of component `id` lies within `r` (Chebyshev) of (i, j). */
static int near_component(const bump_work *wk, int h, int w, int periodic,
                          int i, int j, int r, int id)
{
    for (int ni = i - r; ni <= i + r; ni++)
        for (int nj = j - r; nj <= j + r; nj++) {
            int k = pixel_at(h, w, periodic, ni, nj);
            if (k >= 0 && wk->label[k] == id)
                return 1;
        }
    return 0;
}

/* Weighted centroid over the component `id` grown by p->window pixels,
 * looking at rows range[0]..range[1] and columns range[2]..range[3] (on a
 * torus one period of each, unwrapped: the centre is taken mod the size). */
static void centroid(const float *img, int h, int w, const bump_params *p,
                     const bump_work *wk, int id, const int range[4],
                     bump_found *f)
{
    double sw = 0, sx = 0, sy = 0;
    for (int i = range[0]; i <= range[1]; i++)
        for (int j = range[2]; j <= range[3]; j++) {
            int k = pixel_at(h, w, p->periodic, i, j);
            if (k < 0 || !near_component(wk, h, w, p->periodic, i, j, p->window, id))
                continue;
            double v = (img[k] + 1.0) / 2;
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            sw += v;
            sx += v * (j + 0.5);
            sy += v * (i + 0.5);
        }
    f->cx = sx / sw;  /* sw > 0: the component's own pixels are above -1 */
    f->cy = sy / sw;
    if (p->periodic) {
        f->cx -= w * floor(f->cx / w);
        f->cy -= h * floor(f->cy / h);
    }
}

bump_found bump_detect(const float *img, int h, int w, const bump_params *p,
                       bump_work *wk)
{
    const int n = h * w;
    for (int k = 0; k < n; k++)
        wk->label[k] = -2;  /* not visited */
    bump_found f = {0, NAN, NAN};
    int best = -1, id = 0;
    double best_mass = -1;
    for (int k = 0; k < n; k++) {
        if (wk->label[k] != -2 || !(img[k] > p->threshold))
            continue;
        double mass = 0;
        int size = flood(img, h, w, p, wk, k, id, &mass);
        if (size >= p->min_size) {
            f.count++;
            if (mass > best_mass) {
                best_mass = mass;
                best = id;
            }
        }
        id++;
    }
    if (best < 0)
        return f;
    int box[4] = {h, -1, w, -1}, peak = -1;  /* i0, i1, j0, j1; brightest pixel */
    for (int k = 0; k < n; k++)
        if (wk->label[k] == best) {
            int i = k / w, j = k % w;
            box[0] = i < box[0] ? i : box[0];
            box[1] = i > box[1] ? i : box[1];
            box[2] = j < box[2] ? j : box[2];
            box[3] = j > box[3] ? j : box[3];
            peak = peak < 0 || img[k] > img[peak] ? k : peak;
        }
    const int r = p->window, pi = peak / w, pj = peak % w;
    int range[4] = {box[0] - r, box[1] + r, box[2] - r, box[3] + r};
    if (p->periodic) {  /* one period of rows and columns around the peak */
        range[0] = pi - h / 2;
        range[1] = range[0] + h - 1;
        range[2] = pj - w / 2;
        range[3] = range[2] + w - 1;
    }
    centroid(img, h, w, p, wk, best, range, &f);
    return f;
}
