/* Bump detection in one image: threshold, connected components, and the
 * intensity-weighted centroid of the strongest component. Plain C with no
 * host calls, so the tests compile it directly.
 *
 * Geometry as in bd/data.h: x runs along columns, y along rows, and pixel
 * (row i, column j) is the point (j + 0.5, i + 0.5). Pixels are in [-1, 1]
 * with the bump bright (the background is -1). */
#ifndef BD_BUMP_DETECT_H
#define BD_BUMP_DETECT_H

#include <stdint.h>

typedef struct bump_params {
    double threshold;     /* a pixel is on when its value > threshold */
    int    connectivity;  /* 4 or 8 */
    int    min_size;      /* components with fewer pixels are ignored */
    int    window;        /* the centroid window: the component grown by
                             this many pixels (Chebyshev distance) */
    int    periodic;      /* 1: the image is a torus (neighbours, window
                             and centroid wrap around its edges) */
} bump_params;

/* Scratch for an image of n = h * w pixels: 2 n ints. */
typedef struct bump_work {
    int32_t *label;  /* component id of each pixel; -2 when off */
    int32_t *stack;
} bump_work;

typedef struct bump_found {
    int    count;   /* components of at least min_size pixels */
    double cx, cy;  /* centroid of the strongest one (largest sum of
                       (v + 1) / 2); NaN when count is 0 */
} bump_found;

/* img: (h, w) row-major -> what was found. The centroid weighs each pixel
 * of the window by (v + 1) / 2 clipped to [0, 1]: growing the component
 * removes most of the bias a threshold cut puts on a centroid (for sigma =
 * 1 and threshold 0: under 0.01 px with window 2, up to 0.25 px with window
 * 0). On a torus (p->periodic) the centre is in [0, w) x [0, h), found
 * by unwrapping the window around the strongest pixel of the component;
 * a component and its window must span less than half the image. */
bump_found bump_detect(const float *img, int h, int w, const bump_params *p,
                       bump_work *work);

#endif
