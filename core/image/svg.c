/* SVG plots: scatter plots coloured by a value (viridis, with a colour bar)
 * and line plots of several curves (tab10, with a legend), on a framed axis
 * box with nice ticks. The document is built in memory, then written atomically
 * (bd_write_file_atomic). */
#include "bd/plot.h"
#include "bd/run.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARGIN_LEFT   72
#define MARGIN_TOP    40
#define MARGIN_BOTTOM 56
#define MARGIN_RIGHT  24
#define COLORBAR_SPACE 96  /* extra right margin for a colour bar */
#define MAX_CURVES    10
#define FONT "font-family=\"sans-serif\""

/* ---- text buffer ----------------------------------------------------------- */

typedef struct svg_buf {
    char  *p;
    size_t len, cap;
    bool   failed;  /* an allocation failed: the rest is dropped */
} svg_buf;

static void put(svg_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(svg_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0,
                      fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *grown = realloc(b->p, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->p = grown;
        b->cap = cap;
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* Text content with &, <, > and " escaped. */
static void put_text(svg_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': put(b, "&amp;"); break;
        case '<': put(b, "&lt;"); break;
        case '>': put(b, "&gt;"); break;
        case '"': put(b, "&quot;"); break;
        default:  put(b, "%c", *s);
        }
    }
}

static void put_label(svg_buf *b, double x, double y, const char *anchor,
                      int size, const char *extra, const char *text)
{
    put(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\" "
        FONT "%s>", x, y, anchor, size, extra);
    put_text(b, text);
    put(b, "</text>\n");
}

/* ---- colours --------------------------------------------------------------- */

typedef struct rgb {
    unsigned char r, g, b;
} rgb;

/* matplotlib's viridis at 0, 0.1, ..., 1 */
static const rgb VIRIDIS[11] = {
    {0x44, 0x01, 0x54}, {0x48, 0x24, 0x75}, {0x41, 0x44, 0x87}, {0x35, 0x5f, 0x8d},
    {0x2a, 0x78, 0x8e}, {0x21, 0x91, 0x8c}, {0x22, 0xa8, 0x84}, {0x44, 0xbf, 0x70},
    {0x7a, 0xd1, 0x51}, {0xbd, 0xdf, 0x26}, {0xfd, 0xe7, 0x25},
};

static const rgb TAB10[MAX_CURVES] = {
    {0x1f, 0x77, 0xb4}, {0xff, 0x7f, 0x0e}, {0x2c, 0xa0, 0x2c}, {0xd6, 0x27, 0x28},
    {0x94, 0x67, 0xbd}, {0x8c, 0x56, 0x4b}, {0xe3, 0x77, 0xc2}, {0x7f, 0x7f, 0x7f},
    {0xbc, 0xbd, 0x22}, {0x17, 0xbe, 0xcf},
};

/* t in [0, 1] -> viridis, linear between the stops */
static rgb viridis(double t)
{
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double at = t * 10;
    int i = at >= 10 ? 9 : (int)at;
    double f = at - i;
    rgb a = VIRIDIS[i], c = VIRIDIS[i + 1];
    return (rgb){(unsigned char)lround(a.r + f * (c.r - a.r)),
                 (unsigned char)lround(a.g + f * (c.g - a.g)),
                 (unsigned char)lround(a.b + f * (c.b - a.b))};
}

/* ---- axes ------------------------------------------------------------------ */

/* A data interval [lo, hi] mapped onto the pixel interval [p0, p1]. */
typedef struct axis {
    double lo, hi;
    double p0, p1;
    bool   log;  /* data are log10 of the values */
} axis;

static double axis_map(const axis *a, double v)
{
    return a->p0 + (v - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

/* The value as the axis stores it: log10 on a log axis (NaN for v <= 0). */
static double axis_value(bool log, double v)
{
    return log ? (v > 0 ? log10(v) : NAN) : v;
}

/* Range of the finite values in [lo, hi] (starts must be +inf, -inf). */
static void extend(double *lo, double *hi, double v)
{
    if (isfinite(v)) {
        *lo = v < *lo ? v : *lo;
        *hi = v > *hi ? v : *hi;
    }
}

/* Pad a data range by 4% each side; an empty or single-valued range gets a
 * unit-sized one around it. */
static void pad_range(double *lo, double *hi)
{
    if (!(*lo <= *hi)) {
        *lo = 0;
        *hi = 1;
    } else if (*hi - *lo < 1e-12 * fmax(1.0, fabs(*lo))) {
        *lo -= 0.5;
        *hi += 0.5;
    } else {
        double pad = 0.04 * (*hi - *lo);
        *lo -= pad;
        *hi += pad;
    }
}

/* 1, 2 or 5 times a power of ten, near range / 6; at least 1 on log axes. */
static double tick_step(double range, bool log)
{
    double raw = range / 6;
    double p = pow(10, floor(log10(raw)));
    double m = raw / p;
    double step = (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
    return log && step < 1 ? 1 : step;
}

#define MAX_TICKS 64

/* Tick positions (in axis units) and their labels: multiples of the step
 * on a linear axis (labels in "%g", so 3 * 0.1 reads 0.3, and no -0);
 * powers of ten on a log axis, with 2x and 5x ones when it spans under 2.5
 * decades. At most MAX_TICKS. */
static int make_ticks(const axis *a, double *at, char (*text)[32])
{
    double step = tick_step(a->hi - a->lo, a->log);
    bool fine = a->log && a->hi - a->lo < 2.5;
    static const double mantissas[3] = {1, 2, 5};
    int n = 0;
    for (double k = ceil(a->lo / step) - (fine ? 1 : 0);
         k * step <= a->hi && n < MAX_TICKS; k++) {
        for (int m = 0; m < (fine ? 3 : 1) && n < MAX_TICKS; m++) {
            double v = a->log ? k * step + log10(mantissas[m])
                              : k * step;
            if (v < a->lo || v > a->hi)
                continue;
            if (fabs(v) < 1e-9 * step)
                v = 0;
            at[n] = v;
            snprintf(text[n++], 32, a->log ? "%.3g" : "%g",
                     a->log ? pow(10, v) : v);
        }
    }
    return n;
}

/* Grid line, tick mark and label for each tick of a horizontal (x) or
 * vertical (y) axis; `other` is the perpendicular axis. */
static void draw_ticks(svg_buf *b, const axis *a, const axis *other, bool is_x)
{
    double at[MAX_TICKS];
    char text[MAX_TICKS][32];
    int n = make_ticks(a, at, text);
    for (int i = 0; i < n; i++) {
        double p = axis_map(a, at[i]);
        if (is_x) {
            put(b, "<line class=\"tick\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                "y2=\"%.1f\" stroke=\"#ddd\"/>\n", p, other->p0, p, other->p1);
            put(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"#000\"/>\n", p, other->p0, p, other->p0 + 5);
            put_label(b, p, other->p0 + 18, "middle", 12, "", text[i]);
        } else {
            put(b, "<line class=\"tick\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                "y2=\"%.1f\" stroke=\"#ddd\"/>\n", other->p0, p, other->p1, p);
            put(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"#000\"/>\n", other->p0 - 5, p, other->p0, p);
            put_label(b, other->p0 - 8, p + 4, "end", 12, "", text[i]);
        }
    }
}

static bool has_text(const char *s) { return s && *s; }

/* Document head, ticks, frame, title and axis labels. */
static void draw_frame(svg_buf *b, const axis *ax, const axis *ay,
                       const bd_plot_options *o)
{
    put(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
        "viewBox=\"0 0 %d %d\">\n"
        "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
        o->width, o->height, o->width, o->height);
    draw_ticks(b, ax, ay, true);
    draw_ticks(b, ay, ax, false);
    put(b, "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
        "height=\"%.1f\" fill=\"none\" stroke=\"#000\"/>\n", ax->p0, ay->p1,
        ax->p1 - ax->p0, ay->p0 - ay->p1);
    if (has_text(o->title))
        put_label(b, (ax->p0 + ax->p1) / 2, 26, "middle", 16, "", o->title);
    if (has_text(o->xlabel))
        put_label(b, (ax->p0 + ax->p1) / 2, o->height - 14, "middle", 13, "",
                  o->xlabel);
    if (has_text(o->ylabel)) {
        char rot[64];
        double cy = (ay->p0 + ay->p1) / 2;
        snprintf(rot, sizeof rot, " transform=\"rotate(-90 18 %.1f)\"", cy);
        put_label(b, 18, cy, "middle", 13, rot, o->ylabel);
    }
}

/* The plot area of an options' size, with `right` pixels on the right. */
static void make_axes(const bd_plot_options *o, int right, axis *ax, axis *ay)
{
    ax->p0 = MARGIN_LEFT;
    ax->p1 = o->width - right;
    ay->p0 = o->height - MARGIN_BOTTOM;  /* y grows upwards */
    ay->p1 = MARGIN_TOP;
    ax->log = false;
    ay->log = o->logy;
    pad_range(&ax->lo, &ax->hi);
    pad_range(&ay->lo, &ay->hi);
}

/* ---- writing --------------------------------------------------------------- */

static bd_status write_svg(const char *path, svg_buf *b)
{
    put(b, "</svg>\n");
    if (b->failed)
        return bd_fail(BD_E_NOMEM, "plot '%s': out of memory", path);
    return bd_write_file_atomic(path, b->p, b->len);
}

static bd_status check_common(const char *path, const bd_plot_options *o)
{
    if (!path || !*path)
        return bd_fail(BD_E_ARG, "plot: no file path given");
    if (!o)
        return bd_fail(BD_E_ARG, "plot '%s': options are NULL (use"
                       " bd_plot_defaults())", path);
    if (o->width < 200 || o->width > 4000 || o->height < 150 || o->height > 4000)
        return bd_fail(BD_E_ARG, "plot '%s': size %d x %d, expected width in"
                       " [200, 4000] and height in [150, 4000]", path,
                       o->width, o->height);
    return BD_OK;
}

bd_plot_options bd_plot_defaults(void)
{
    return (bd_plot_options){.width = 640, .height = 480};
}

/* ---- scatter --------------------------------------------------------------- */

/* Vertical viridis bar right of the plot with ticks over [vlo, vhi]. */
static void draw_colorbar(svg_buf *b, const axis *ax, const axis *ay,
                          double vlo, double vhi, const char *label)
{
    double x = ax->p1 + 16, w = 14;
    put(b, "<defs><linearGradient id=\"viridis\" x1=\"0\" y1=\"1\" x2=\"0\" "
        "y2=\"0\">\n");
    for (int i = 0; i <= 10; i++)
        put(b, "<stop offset=\"%.1f\" stop-color=\"#%02x%02x%02x\"/>\n",
            i / 10.0, VIRIDIS[i].r, VIRIDIS[i].g, VIRIDIS[i].b);
    put(b, "</linearGradient></defs>\n");
    put(b, "<rect class=\"colorbar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
        "height=\"%.1f\" fill=\"url(#viridis)\" stroke=\"#000\"/>\n",
        x, ay->p1, w, ay->p0 - ay->p1);
    axis bar = {.lo = vlo, .hi = vhi, .p0 = ay->p0, .p1 = ay->p1};
    double at[MAX_TICKS];
    char text[MAX_TICKS][32];
    int n = make_ticks(&bar, at, text);
    for (int i = 0; i < n; i++) {
        double p = axis_map(&bar, at[i]);
        put(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#000\"/>\n", x + w, p, x + w + 4, p);
        put_label(b, x + w + 7, p + 4, "start", 11, "", text[i]);
    }
    if (has_text(label)) {
        char rot[64];
        double cx = x + w + 62, cy = (ay->p0 + ay->p1) / 2;
        snprintf(rot, sizeof rot, " transform=\"rotate(-90 %.1f %.1f)\"", cx, cy);
        put_label(b, cx, cy, "middle", 13, rot, label);
    }
}

bd_status bd_plot_scatter(const char *path, const bd_scatter *s,
                          const bd_plot_options *opt)
{
    BD_TRY(check_common(path, opt));
    if (!s || s->n < 0 || (s->n > 0 && (!s->x || !s->y)))
        return bd_fail(BD_E_ARG, "plot '%s': scatter needs n >= 0 and x, y"
                       " arrays of n values", path);
    axis ax = {INFINITY, -INFINITY, 0, 0, false};
    axis ay = ax;
    double vlo = INFINITY, vhi = -INFINITY;
    for (int64_t i = 0; i < s->n; i++) {
        extend(&ax.lo, &ax.hi, s->x[i]);
        extend(&ay.lo, &ay.hi, axis_value(opt->logy, s->y[i]));
        if (s->value)
            extend(&vlo, &vhi, s->value[i]);
    }
    if (!(vlo < vhi)) {  /* one value (or none): a unit range around it */
        vlo = isfinite(vlo) ? vlo - 0.5 : 0;
        vhi = vlo + 1;
    }
    make_axes(opt, MARGIN_RIGHT + (s->value ? COLORBAR_SPACE : 0), &ax, &ay);
    svg_buf b = {0};
    draw_frame(&b, &ax, &ay, opt);
    double r = fmax(1.0, fmin(3.5, 40.0 / sqrt((double)(s->n + 1))));
    put(&b, "<g class=\"points\" fill-opacity=\"0.85\">\n");
    for (int64_t i = 0; i < s->n; i++) {
        double y = axis_value(opt->logy, s->y[i]);
        if (!isfinite(s->x[i]) || !isfinite(y))
            continue;
        rgb c = s->value && isfinite(s->value[i])
              ? viridis((s->value[i] - vlo) / (vhi - vlo)) : TAB10[0];
        put(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.2f\" fill=\"#%02x%02x%02x\"/>\n",
            axis_map(&ax, s->x[i]), axis_map(&ay, y), r, c.r, c.g, c.b);
    }
    put(&b, "</g>\n");
    if (s->value)
        draw_colorbar(&b, &ax, &ay, vlo, vhi, s->value_label);
    bd_status st = write_svg(path, &b);
    free(b.p);
    return st;
}

/* ---- lines ----------------------------------------------------------------- */

static double curve_x(const bd_curve *c, int64_t i)
{
    return c->x ? c->x[i] : (double)i;
}

/* One polyline per run of drawable points; a lone point is a dot. */
static void draw_curve(svg_buf *b, const bd_curve *c, rgb col, const axis *ax,
                       const axis *ay)
{
    put(b, "<g class=\"curve\" stroke=\"#%02x%02x%02x\" fill=\"#%02x%02x%02x\">\n",
        col.r, col.g, col.b, col.r, col.g, col.b);
    int64_t i = 0;
    while (i < c->n) {
        int64_t start = i;
        while (i < c->n && isfinite(curve_x(c, i))
               && isfinite(axis_value(ay->log, c->y[i])))
            i++;
        if (i - start == 1) {
            put(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"/>\n",
                axis_map(ax, curve_x(c, start)),
                axis_map(ay, axis_value(ay->log, c->y[start])));
        } else if (i - start > 1) {
            put(b, "<polyline fill=\"none\" stroke-width=\"1.8\" points=\"");
            for (int64_t k = start; k < i; k++)
                put(b, "%s%.1f,%.1f", k > start ? " " : "",
                    axis_map(ax, curve_x(c, k)),
                    axis_map(ay, axis_value(ay->log, c->y[k])));
            put(b, "\"/>\n");
        }
        if (i == start)
            i++;
    }
    put(b, "</g>\n");
}

/* Named curves listed in the top-right corner of the plot. */
static void draw_legend(svg_buf *b, const bd_curve *curves, int n,
                        const axis *ax, const axis *ay)
{
    int row = 0;
    for (int k = 0; k < n; k++) {
        if (!has_text(curves[k].name))
            continue;
        double y = ay->p1 + 16 + 18 * row++;
        double x = ax->p1 - 150;
        put(b, "<line class=\"legend\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
            "y2=\"%.1f\" stroke=\"#%02x%02x%02x\" stroke-width=\"2.5\"/>\n",
            x, y - 4, x + 22, y - 4, TAB10[k].r, TAB10[k].g, TAB10[k].b);
        put_label(b, x + 28, y, "start", 12, "", curves[k].name);
    }
}

static bd_status check_curves(const char *path, const bd_curve *curves, int n)
{
    if (!curves || n < 1 || n > MAX_CURVES)
        return bd_fail(BD_E_ARG, "plot '%s': %d curves, expected 1 to %d", path,
                       curves ? n : 0, MAX_CURVES);
    for (int k = 0; k < n; k++)
        if (curves[k].n < 0 || (curves[k].n > 0 && !curves[k].y))
            return bd_fail(BD_E_ARG, "plot '%s': curve %d has n = %lld and %s"
                           " y, expected n >= 0 and n values", path, k,
                           (long long)curves[k].n, curves[k].y ? "a" : "no");
    return BD_OK;
}

bd_status bd_plot_lines(const char *path, const bd_curve *curves, int n_curves,
                        const bd_plot_options *opt)
{
    BD_TRY(check_common(path, opt));
    BD_TRY(check_curves(path, curves, n_curves));
    axis ax = {INFINITY, -INFINITY, 0, 0, false};
    axis ay = ax;
    for (int k = 0; k < n_curves; k++)
        for (int64_t i = 0; i < curves[k].n; i++) {
            double y = axis_value(opt->logy, curves[k].y[i]);
            if (isfinite(y) && isfinite(curve_x(&curves[k], i))) {
                extend(&ax.lo, &ax.hi, curve_x(&curves[k], i));
                extend(&ay.lo, &ay.hi, y);
            }
        }
    make_axes(opt, MARGIN_RIGHT, &ax, &ay);
    svg_buf b = {0};
    draw_frame(&b, &ax, &ay, opt);
    for (int k = 0; k < n_curves; k++)
        draw_curve(&b, &curves[k], TAB10[k], &ax, &ay);
    draw_legend(&b, curves, n_curves, &ax, &ay);
    bd_status st = write_svg(path, &b);
    free(b.p);
    return st;
}
