/* Plots written from C as SVG files: scatter plots coloured by a value with a
 * colour bar (embeddings coloured by x or y), and line plots of several
 * curves with a legend (metric curves over training). Both draw a framed
 * axis box with "nice" ticks (1, 2 or 5 times a power of ten), tick labels,
 * axis labels and a title.
 *
 * Non-finite values are skipped: a point with a NaN coordinate is not drawn,
 * and a NaN in a curve breaks its line (a metric not measured at a step).
 * Text is XML-escaped. The file is written whole or not at all. */
#ifndef BD_PLOT_H
#define BD_PLOT_H

#include <stdbool.h>
#include <stdint.h>

#include "bd/status.h"

typedef struct bd_plot_options {
    const char *title;   /* NULL or "": none */
    const char *xlabel;
    const char *ylabel;
    int         width;   /* pixels, 200 to 4000 */
    int         height;  /* pixels, 150 to 4000 */
    bool        logy;    /* log10 y axis; values <= 0 are skipped */
} bd_plot_options;

/* No title or labels, 640 x 480, linear axes. */
bd_plot_options bd_plot_defaults(void);

/* n points (x[i], y[i]), coloured by value[i] on the viridis map with a
 * colour bar labelled value_label; value NULL draws every point in one
 * colour, without a colour bar. */
typedef struct bd_scatter {
    int64_t      n;
    const float *x, *y;
    const float *value;        /* n values or NULL */
    const char  *value_label;  /* colour bar label; NULL: none */
} bd_scatter;

bd_status bd_plot_scatter(const char *path, const bd_scatter *s,
                          const bd_plot_options *opt);

/* A curve of n points; x NULL means 0, 1, ..., n - 1. name: its legend
 * entry (NULL or "": not in the legend). */
typedef struct bd_curve {
    const char  *name;
    int64_t      n;
    const float *x, *y;
} bd_curve;

/* Curves in the tab10 colours, in order (at most 10). */
bd_status bd_plot_lines(const char *path, const bd_curve *curves, int n_curves,
                        const bd_plot_options *opt);

#endif
