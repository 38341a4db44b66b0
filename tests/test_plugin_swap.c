/* Swapping a metric at run time (bd_metric_load_from): the name moves to
 * the plugin of another folder and back; instances of the replaced plugin
 * keep working and keep it loaded, and it is unloaded with the last one;
 * the other names stay where they were; the failures. The second "bump"
 * (tests/fixtures/metric_swap/bump_v2.c) reports count_mean and version.
 * Whether a file is still mapped is asked with dlopen(RTLD_NOLOAD). */
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "bd/registry.h"
#include "harness.h"

#define V2 BD_SWAP_DIR "/bd_bump.so"

/* Whether the file at path is mapped in the process. */
static bool mapped(const char *path)
{
    char real[PATH_MAX];
    void *h = realpath(path, real) ? dlopen(real, RTLD_NOW | RTLD_NOLOAD) : NULL;
    if (h)
        dlclose(h);
    return h != NULL;
}

static bool listed(const char *path)
{
    for (int i = 0; i < bd_plugin_count(); i++)
        if (strcmp(bd_plugin_path(i), path) == 0)
            return true;
    return false;
}

/* The file the metric `name` resolves to. */
static const char *provider(const char *name)
{
    for (int i = 0; i < bd_metric_count(); i++)
        if (strcmp(bd_metric_at(i)->name, name) == 0)
            return bd_metric_path(i);
    return NULL;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = s ? strlen(s) : 0, k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* Three 8x8 images, each one bump (in [-1, 1]) at its label. */
static void draw_bumps(bd_tensor **images, bd_tensor **labels)
{
    static const float at[3][2] = {{2, 3}, {5, 5}, {3, 6}};
    *images = bd_tensor_new4(3, 1, 8, 8, false);
    *labels = bd_tensor_new4(3, 2, 0, 0, false);
    for (int i = 0; i < 3; i++) {
        (*labels)->data[2 * i] = at[i][0];
        (*labels)->data[2 * i + 1] = at[i][1];
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) {
                float dx = (float)x - at[i][0], dy = (float)y - at[i][1];
                (*images)->data[i * 64 + y * 8 + x] =
                    2.0f * expf(-(dx * dx + dy * dy) / 2.0f) - 1.0f;
            }
    }
}

/* The number `name` of a result, or NaN if it has none. */
static double number(const bd_metric_result *r, const char *name)
{
    for (int i = 0; i < bd_metric_result_count(r); i++)
        if (strcmp(bd_metric_result_name(r, i), name) == 0)
            return bd_metric_result_number(r, i);
    return NAN;
}

/* m measures the three bumps; the value of `name` in what it reports. */
static double measure(bd_metric *m, const char *name)
{
    bd_tensor *images, *labels;
    draw_bumps(&images, &labels);
    bd_metric_result *r = bd_metric_result_new();
    double v = NAN;
    if (bd_metric_update(m, images, labels, NULL) == BD_OK
        && bd_metric_compute(m, r) == BD_OK)
        v = number(r, name);
    bd_metric_result_free(r);
    bd_tensor_free(images);
    bd_tensor_free(labels);
    return v;
}

static void test_swap_and_back(void)
{
    bd_metric *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(bd_metric_create("bump", NULL, &a));
    char v1[PATH_MAX] = "";
    if (a)
        snprintf(v1, sizeof v1, "%s", bd_metric_plugin(a));
    CHECK(ends_with(v1, "/plugins/bd_bump.so"), "the build's bump: %s", v1);
    CHECK(measure(a, "accuracy") == 1.0, "v1 finds the bumps");

    CHECK_OK(bd_metric_load_from("bump", BD_SWAP_DIR));
    CHECK(ends_with(provider("bump"), V2), "bump is v2's: %s", provider("bump"));
    CHECK(ends_with(provider("percolation"), "/plugins/bd_percolation.so"),
          "percolation stays: %s", provider("percolation"));
    CHECK(!listed(v1) && mapped(v1), "v1 retired, loaded for its instance");

    CHECK_OK(bd_metric_create("bump", NULL, &b));
    CHECK(b && strcmp(bd_metric_plugin(b), V2) == 0, "a new bump is v2");
    CHECK(measure(b, "count_mean") == 1.0 && measure(b, "version") == 2.0
          && isnan(measure(b, "accuracy")), "v2 reports other numbers");
    CHECK(measure(a, "accuracy") == 1.0, "the v1 instance still works");
    CHECK_OK(bd_metric_create_like(a, NULL, &c));
    CHECK(c && strcmp(bd_metric_plugin(c), v1) == 0
          && measure(c, "accuracy") == 1.0, "create_like makes v1");

    bd_metric_free(a);
    CHECK(mapped(v1), "v1 stays while an instance lives");
    bd_metric_free(c);
    CHECK(!mapped(v1), "v1 unloaded with its last instance");

    /* back to the build's folder: v1 loads again, v2 retires */
    CHECK_OK(bd_metric_load_from("bump", bd_plugin_search_dir(0)));
    CHECK(ends_with(provider("bump"), v1), "bump is v1's again: %s",
          provider("bump"));
    CHECK(!listed(V2) && mapped(V2), "v2 retired, loaded for its instance");
    CHECK(measure(b, "version") == 2.0, "the v2 instance still works");
    bd_metric_free(b);
    CHECK(!mapped(V2), "v2 unloaded with its last instance");
    int n = bd_plugin_count();
    CHECK_OK(bd_metric_load_from("bump", bd_plugin_search_dir(0)));
    CHECK(bd_plugin_count() == n, "the provider's own folder: no change");
    bd_plugins_unload_all();
}

static void test_other_names(void)
{
    bd_metric *p = NULL;
    CHECK_OK(bd_plugins_scan());
    char v1[PATH_MAX];
    snprintf(v1, sizeof v1, "%s", provider("bump"));
    CHECK_OK(bd_metric_load_from("bump", BD_SWAP_DIR));
    CHECK(!mapped(v1), "v1 without instances unloaded at once");
    CHECK_OK(bd_metric_create("percolation", NULL, &p));
    char old[PATH_MAX] = "";
    if (p)
        snprintf(old, sizeof old, "%s", bd_metric_plugin(p));
    CHECK(ends_with(old, "/plugins/bd_percolation.so"), "percolation: %s", old);
    /* the same v2 plugin takes its second name too */
    CHECK_OK(bd_metric_load_from("percolation", BD_SWAP_DIR));
    CHECK(ends_with(provider("percolation"), V2) && !listed(old)
          && mapped(old), "percolation moved to v2");
    bd_metric_free(p);
    CHECK(!mapped(old), "the old percolation unloaded");
    CHECK_OK(bd_metric_create("percolation", NULL, &p));
    CHECK(p && measure(p, "version") == 2.0, "a new percolation is v2's");
    bd_metric_free(p);
    bd_plugins_unload_all();
}

static void test_failures(void)
{
    CHECK_FAILS(bd_metric_load_from("manifold", BD_SWAP_DIR), BD_E_ARG,
                "metric 'manifold': no plugin in folder '" BD_SWAP_DIR "'"
                " provides it (its plugins provide: bump, percolation)");
    CHECK_FAILS(bd_metric_load_from("bump", BD_SWAP_DIR "_broken"), BD_E_ARG,
                "provides it (its plugins provide: no metric; 1 failed to"
                " load, the first: plugin '" BD_SWAP_DIR "_broken/bd_bump.so':"
                " elf: starts with");
    char empty[] = "/tmp/bd_swap_XXXXXX";
    CHECK(mkdtemp(empty) != NULL, "temporary folder");
    CHECK_FAILS(bd_metric_load_from("bump", empty), BD_E_ARG,
                "provides it (it holds no bd_*.so file)");
    rmdir(empty);
    CHECK_FAILS(bd_metric_load_from("bump", BD_SWAP_DIR "_nowhere"), BD_E_IO,
                "cannot read folder '" BD_SWAP_DIR "_nowhere'");
    CHECK_FAILS(bd_metric_load_from(NULL, BD_SWAP_DIR), BD_E_ARG,
                "needs a name and a folder, got NULL and");

    /* a denoiser name is never replaced: nothing changes */
    int n = bd_plugin_count();
    CHECK_FAILS(bd_metric_load_from("bump", BD_SWAP_DIR "_taken"), BD_E_PLUGIN,
                "bd_bump.so': validate: denoiser 'mlp' is already provided by '");
    CHECK(bd_plugin_count() == n && ends_with(provider("bump"),
          "/plugins/bd_bump.so") && !mapped(BD_SWAP_DIR "_taken/bd_bump.so"),
          "bump stays with the build's plugin");
    /* a plain load of a second bump is refused as before */
    CHECK_FAILS(bd_plugin_load(V2), BD_E_PLUGIN, "metric 'bump' is already"
                " provided by '");
    bd_plugins_unload_all();
}

int main(void)
{
    RUN(test_swap_and_back);
    RUN(test_other_names);
    RUN(test_failures);
    return harness_summary();
}
