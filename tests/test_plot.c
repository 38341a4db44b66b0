/* SVG plots: the files are well-formed XML with the elements a reader
 * expects (points, colour bar, curves, legend, ticks, escaped labels), and
 * every argument error is reported. */
#include <unistd.h>

#include "bd/plot.h"
#include "harness.h"

static char dir[64];

static const char *path_in_dir(const char *name)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = 0;
    fclose(f);
    return s;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Well-formed enough for any XML reader: tags nest and close in order,
 * quotes pair up inside tags, text holds no raw '<' and only the five
 * entities. Returns NULL or what is wrong. */
static const char *xml_problem(const char *s)
{
    static char why[128];
    const char *stack[64];
    size_t lens[64];
    int depth = 0, elements = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '&') {
            if (strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4)
                && strncmp(p, "&gt;", 4) && strncmp(p, "&quot;", 6)
                && strncmp(p, "&apos;", 6))
                return "a raw '&' in text";
            continue;
        }
        if (*p != '<')
            continue;
        const char *end = strchr(p, '>');
        if (!end)
            return "a tag is not closed";
        int quotes = 0;
        for (const char *q = p; q < end; q++)
            quotes += *q == '"';
        if (quotes % 2)
            return "unpaired quotes in a tag";
        if (p[1] == '?' || p[1] == '!') {
            p = end;
            continue;
        }
        if (p[1] == '/') {
            size_t len = strcspn(p + 2, " >");
            if (depth == 0 || lens[depth - 1] != len
                || strncmp(stack[depth - 1], p + 2, len)) {
                snprintf(why, sizeof why, "closing tag '%.*s' does not match",
                         (int)len, p + 2);
                return why;
            }
            depth--;
        } else if (end[-1] != '/') {
            if (depth == 64)
                return "nesting too deep";
            stack[depth] = p + 1;
            lens[depth++] = strcspn(p + 1, " />");
            elements++;
        } else {
            elements++;
        }
        p = end;
    }
    if (depth)
        return "elements left open";
    return elements ? NULL : "no elements";
}

static char *check_svg(const char *path)
{
    char *s = read_all(path);
    CHECK(s != NULL, "cannot read %s", path);
    if (!s)
        return NULL;
    const char *why = xml_problem(s);
    CHECK(why == NULL, "%s is not well-formed: %s", path, why);
    CHECK(strncmp(s, "<?xml", 5) == 0 && strstr(s, "<svg xmlns=\"http://www.w3"
          ".org/2000/svg\"") && strstr(s, "</svg>"), "%s: not an SVG document",
          path);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0, "%s was left behind", tmp);
    return s;
}

static void test_scatter(void)
{
    enum { N = 200 };
    float x[N], y[N], v[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)(i % 20) * 0.5f;
        y[i] = (float)(i / 20) - 3.0f;
        v[i] = x[i];
    }
    x[7] = NAN;  /* skipped */
    bd_plot_options o = bd_plot_defaults();
    o.title = "UMAP <layer4> & x";
    o.xlabel = "umap 1";
    o.ylabel = "umap 2";
    bd_scatter s = {.n = N, .x = x, .y = y, .value = v, .value_label = "x"};
    const char *path = path_in_dir("scatter.svg");
    CHECK_OK(bd_plot_scatter(path, &s, &o));
    char *svg = check_svg(path);
    if (!svg)
        return;
    CHECK(count(svg, "<circle") == N - 1, "%d points drawn, expected %d",
          count(svg, "<circle"), N - 1);
    CHECK(strstr(svg, "UMAP &lt;layer4&gt; &amp; x"), "title not escaped");
    CHECK(strstr(svg, ">umap 1</text>") && strstr(svg, ">umap 2</text>"),
          "axis labels missing");
    CHECK(count(svg, "class=\"colorbar\"") == 1 && count(svg, "<stop") == 11,
          "colour bar missing");
    CHECK(strstr(svg, "fill=\"#440154\"") && strstr(svg, "fill=\"#fde725\""),
          "the lowest and highest values are not at the ends of viridis");
    CHECK(count(svg, "class=\"tick\"") >= 6, "only %d ticks",
          count(svg, "class=\"tick\""));
    CHECK(strstr(svg, ">-2</text>") && strstr(svg, ">4</text>"),
          "y tick labels -2 and 4 missing");
    free(svg);

    s.value = NULL;  /* one colour, no colour bar */
    CHECK_OK(bd_plot_scatter(path, &s, &o));
    svg = check_svg(path);
    if (svg)
        CHECK(!strstr(svg, "colorbar") && count(svg, "fill=\"#1f77b4\"") == N - 1,
              "uncoloured scatter");
    free(svg);

    s.n = 0;  /* an empty plot is still a plot */
    CHECK_OK(bd_plot_scatter(path, &s, &o));
    free(check_svg(path));
}

static void test_lines(void)
{
    enum { N = 50 };
    float step[N], loss[N], acc[N], one = 0.5f;
    for (int i = 0; i < N; i++) {
        step[i] = (float)(100 * i);
        loss[i] = expf(-0.1f * (float)i);
        acc[i] = i % 10 == 0 ? NAN : 1.0f - loss[i];  /* 5 gaps */
    }
    bd_curve c[3] = {
        {.name = "loss", .n = N, .x = step, .y = loss},
        {.name = "acc_x", .n = N, .x = step, .y = acc},
        {.name = "", .n = 1, .x = NULL, .y = &one},  /* a lone point */
    };
    bd_plot_options o = bd_plot_defaults();
    o.title = "training";
    o.xlabel = "step";
    const char *path = path_in_dir("lines.svg");
    CHECK_OK(bd_plot_lines(path, c, 3, &o));
    char *svg = check_svg(path);
    if (!svg)
        return;
    /* loss: 1 line; acc: 5 runs of 9 (the first NaN is at 0) */
    CHECK(count(svg, "<polyline") == 6, "%d polylines, expected 6",
          count(svg, "<polyline"));
    CHECK(count(svg, "class=\"curve\"") == 3 && count(svg, "<circle") == 1,
          "curves or the lone point missing");
    CHECK(count(svg, "class=\"legend\"") == 2 && strstr(svg, ">acc_x</text>"),
          "legend should list the two named curves");
    CHECK(strstr(svg, "stroke=\"#1f77b4\"") && strstr(svg, "stroke=\"#ff7f0e\""),
          "tab10 colours missing");
    CHECK(strstr(svg, ">4000</text>"), "x tick 4000 missing");
    free(svg);

    o.logy = true;  /* log axis: powers of ten, non-positive values skipped */
    loss[3] = 0.0f;
    CHECK_OK(bd_plot_lines(path, c, 1, &o));
    svg = check_svg(path);
    if (svg) {
        CHECK(count(svg, "<polyline") == 2, "log y: %d polylines, expected 2",
              count(svg, "<polyline"));
        CHECK(strstr(svg, ">0.01</text>") && strstr(svg, ">0.1</text>")
              && strstr(svg, ">1</text>"), "log ticks 0.01, 0.1, 1 missing");
    }
    free(svg);
}

static void test_errors(void)
{
    float v[2] = {0, 1};
    bd_plot_options o = bd_plot_defaults();
    bd_scatter s = {.n = 2, .x = v, .y = v};
    bd_curve c = {.name = "a", .n = 2, .y = v};
    CHECK_FAILS(bd_plot_scatter(NULL, &s, &o), BD_E_ARG, "no file path");
    CHECK_FAILS(bd_plot_scatter("a.svg", &s, NULL), BD_E_ARG,
                "options are NULL");
    o.width = 100;
    CHECK_FAILS(bd_plot_scatter("a.svg", &s, &o), BD_E_ARG,
                "size 100 x 480, expected width in [200, 4000]");
    o = bd_plot_defaults();
    s.y = NULL;
    CHECK_FAILS(bd_plot_scatter("a.svg", &s, &o), BD_E_ARG,
                "scatter needs n >= 0 and x, y arrays");
    CHECK_FAILS(bd_plot_lines("a.svg", &c, 0, &o), BD_E_ARG,
                "0 curves, expected 1 to 10");
    CHECK_FAILS(bd_plot_lines("a.svg", &c, 11, &o), BD_E_ARG,
                "11 curves, expected 1 to 10");
    c.y = NULL;
    CHECK_FAILS(bd_plot_lines("a.svg", &c, 1, &o), BD_E_ARG,
                "curve 0 has n = 2 and no y");
    c.y = v;
    CHECK_FAILS(bd_plot_lines(path_in_dir("no/such/dir.svg"), &c, 1, &o),
                BD_E_IO, "cannot create");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/bd_test_plot_XXXXXX");
    if (!mkdtemp(dir)) {
        printf("cannot make a temporary folder\n");
        return 2;
    }
    RUN(test_scatter);
    RUN(test_lines);
    RUN(test_errors);
    remove(path_in_dir("scatter.svg"));
    remove(path_in_dir("lines.svg"));
    rmdir(dir);
    return harness_summary();
}
