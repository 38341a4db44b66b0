/* Datasets made in memory, deterministically: Gaussian bumps, 1D stripes,
 * sums of two perpendicular stripes, on a flat canvas or a torus, optionally
 * drawn on a larger latent canvas and cropped (see docs/PAPER.md, "Data").
 *
 * Geometry. An image is N x N pixels; x runs along columns, y along rows.
 * Pixel (row i, column j) covers [j, j+1) x [i, i+1) and is evaluated at its
 * centre (j + 0.5, i + 0.5). Centres lie on a lattice mu = k * dx (and
 * k * dy) over [0, canvas] (over [0, canvas) on a torus, where 0 and canvas
 * are one point). With canvas > N the image is the centred N x N window
 * of the canvas, offset (canvas - N) / 2 (rounded down); labels are given in
 * image coordinates, so a centre outside the window has a label outside
 * [0, N] and its stripe or bump may not show at all.
 *
 * Pixels (ours, see docs/PAPER.md): a profile g(d) = exp(-d^2 / (denom sigma^2)),
 * denom 2 or 4. A bump is g(r) with r the distance to (mu_x, mu_y); a
 * vertical stripe g(x - mu_x); a horizontal one g(y - mu_y); a sum of
 * stripes (g(x - mu_x) + g(y - mu_y)) / 2. On a torus distances wrap.
 * With invert, v becomes 1 - v. The stored pixel is 2 v - 1, in [-1, 1].
 *
 * Stripe labels: a vertical stripe has label (mu_x, null_label) and a
 * horizontal one (null_label, mu_y); null_label (ours, default -1) lies
 * outside the canvas so the denoiser can tell "no coordinate".
 *
 * Order: 2D kinds enumerate y outer, x inner; stripes list the vertical
 * ones (by x) before the horizontal ones (by y).
 *
 * Held-out region (tested on image-coordinate labels, bounds inclusive):
 *   rect   x in [x0, x1] and y in [y0, y1]   (a W x W square: x1 - x0 = W)
 *   cross  x in [x0, x1] or  y in [y0, y1]   (docs/PAPER.md's "+": 13..19 twice)
 *   xband  x in [x0, x1]                     (a vertical band)
 *   yband  y in [y0, y1]                     (a horizontal band)
 * Those images go to the held-out split. Of the remaining sites a fraction
 * lambda is kept for training: exactly round(lambda * n) of them, chosen
 * uniformly by a Philox stream keyed by `seed`, in lattice order. */
#ifndef BD_DATA_H
#define BD_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "bd/config.h"
#include "bd/tensor.h"

typedef enum bd_data_kind {
    BD_DATA_BUMPS,      /* one 2D Gaussian bump per image */
    BD_DATA_STRIPES,    /* one vertical or horizontal stripe per image */
    BD_DATA_STRIPE_SUM, /* a vertical plus a horizontal stripe per image */
} bd_data_kind;

typedef enum bd_stripe_orient {
    BD_STRIPES_BOTH,       /* vertical ones, then horizontal ones */
    BD_STRIPES_VERTICAL,   /* at every lattice x */
    BD_STRIPES_HORIZONTAL, /* at every lattice y */
} bd_stripe_orient;

typedef enum bd_holdout {
    BD_HOLDOUT_NONE,
    BD_HOLDOUT_RECT,
    BD_HOLDOUT_CROSS,
    BD_HOLDOUT_XBAND,
    BD_HOLDOUT_YBAND,
} bd_holdout;

typedef struct bd_data_spec {
    bd_data_kind     kind;        /* config "kind": bumps | stripes | stripe_sum */
    int64_t          size;        /* N, image side in pixels (32) */
    int64_t          canvas;      /* latent canvas side, >= size (= size) */
    bool             periodic;    /* distances on a torus; canvas == size (false) */
    double           sigma;       /* bump / stripe width in pixels (1.0) */
    double           dx, dy;      /* lattice spacings (1.0) */
    int              denom;       /* 2 or 4: exp(-d^2 / (denom sigma^2)) (2) */
    bool             invert;      /* v -> 1 - v (false) */
    bd_stripe_orient orient;      /* stripes only: both | vertical | horizontal */
    double           null_label;  /* stripes: the missing coordinate (-1) */
    double           lambda;      /* kept fraction of training sites, (0, 1] (1) */
    uint64_t         seed;        /* chooses the kept sites (0) */
    bd_holdout       holdout;     /* none | rect | cross | xband | yband */
    double           hx0, hx1;    /* held-out x interval (config holdout_x0/_x1) */
    double           hy0, hy1;    /* held-out y interval (config holdout_y0/_y1) */
} bd_data_spec;

/* Images and their (x, y) labels. n = 0 leaves both tensors NULL. */
typedef struct bd_split {
    int64_t    n;
    bd_tensor *images; /* (n, 1, N, N), pixels in [-1, 1] */
    bd_tensor *labels; /* (n, 2): (x, y) in image coordinates */
} bd_split;

typedef struct bd_dataset {
    bd_data_spec spec;  /* what it was made from */
    bd_split     train; /* n >= 1 */
    bd_split     held;  /* the held-out region; n = 0 without one */
} bd_dataset;

bd_data_spec bd_data_defaults(void);

/* Fill *spec from cfg over bd_data_defaults(), checking types and ranges,
 * then fail naming any key it did not read (owner "dataset"). Keys: kind,
 * size, canvas, periodic, sigma, dx, dy, denom, invert, orient, null_label,
 * lambda, seed, holdout, holdout_x0, holdout_x1, holdout_y0, holdout_y1.
 * Cross-key checks (canvas >= size, ...) happen in bd_dataset_new. */
bd_status bd_data_read(bd_config *cfg, bd_data_spec *spec);

/* Check a spec on its own (bd_dataset_new does): every value in range and
 * the keys consistent (canvas >= size, a torus is not cropped, a held-out
 * region has ordered bounds), naming the setting and what is allowed. */
bd_status bd_data_check(const bd_data_spec *spec);

/* Make the dataset. Fails on a bad spec, when the training split would be
 * empty, or when the dataset would exceed 2^30 pixels. */
bd_status bd_dataset_new(const bd_data_spec *spec, bd_dataset **out);
void      bd_dataset_free(bd_dataset *d);

/* a's images followed by b's, split by split (e.g. stripes plus a few
 * bumps, for the compositional study). Image sizes must match; spec is
 * a's. */
bd_status bd_dataset_concat(const bd_dataset *a, const bd_dataset *b,
                            bd_dataset **out);

/* The image each label has in a dataset of this spec (kind bumps or
 * stripe_sum; the lattice, held-out region and lambda play no part): one
 * image per label, drawn as bd_dataset_new draws its images, e.g. the
 * clean images of probe labels.   labels: (n, 2) -> images: (n, 1, N, N),
 * a heap tensor (NULL for n = 0). */
bd_status bd_data_draw(const bd_data_spec *spec, const bd_tensor *labels,
                       bd_tensor **images);

/* Labels on a regular grid for probing: x and y each take lo, lo + step,
 * ... up to hi (inclusive, within 1e-9 step), y outer, x inner.
 * -> labels: (n * n, 2), a heap tensor. Fails on step <= 0 or hi < lo. */
bd_status bd_label_grid(double lo, double hi, double step, bd_tensor **labels);

/* BD_E_ARG naming `who`, the first label that is not finite and its row
 * (1-based) when one is NaN or infinite.   labels: (n, 2) */
bd_status bd_labels_check_finite(const bd_tensor *labels, const char *who);

#endif
