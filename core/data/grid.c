/* Probe labels on a regular grid, and the check that labels are finite. */
#include "bd/data.h"

#include <math.h>
#include <stdio.h>

#define MAX_GRID_SIDE 4096

/* labels: (n * n, 2), y outer, x inner, coordinates lo + k step <= hi */
bd_status bd_label_grid(double lo, double hi, double step, bd_tensor **labels)
{
    if (!(step > 0) || !isfinite(step))
        return bd_fail(BD_E_ARG, "label grid: step = %g, expected a finite"
                       " number > 0", step);
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi))
        return bd_fail(BD_E_ARG, "label grid: range [%g, %g], expected finite"
                       " lo <= hi", lo, hi);
    double side = floor((hi - lo) / step + 1e-9) + 1;
    if (side > MAX_GRID_SIDE)
        return bd_fail(BD_E_ARG, "label grid: [%g, %g] in steps of %g has %.0f"
                       " labels per side, expected at most %d", lo, hi, step,
                       side, MAX_GRID_SIDE);
    int64_t n = (int64_t)side;
    bd_tensor *t = bd_tensor_new4(n * n, 2, 0, 0, false);
    if (!t)
        return BD_E_NOMEM;
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < n; i++) {
            t->data[2 * (j * n + i)] = (float)(lo + (double)i * step);
            t->data[2 * (j * n + i) + 1] = (float)(lo + (double)j * step);
        }
    *labels = t;
    return BD_OK;
}

/* A label coordinate as text: "nan" whatever its sign bit. */
static const char *coordinate(char *buf, size_t len, float v)
{
    if (isnan(v))
        snprintf(buf, len, "nan");
    else
        snprintf(buf, len, "%g", (double)v);
    return buf;
}

bd_status bd_labels_check_finite(const bd_tensor *labels, const char *who)
{
    char x[32], y[32];
    for (int64_t i = 0; labels && i < labels->numel; i++) {
        if (isfinite(labels->data[i]))
            continue;
        const float *l = labels->data + (i - i % 2);
        return bd_fail(BD_E_ARG, "%s: label %lld is (%s, %s), expected finite"
                       " numbers (a NaN or infinite label gives NaN images)",
                       who, (long long)(i / 2 + 1), coordinate(x, sizeof x, l[0]),
                       coordinate(y, sizeof y, l[1]));
    }
    return BD_OK;
}
