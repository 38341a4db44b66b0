/* The plugin loader: each failure stage with its message (fixture plugins
 * built by tests/plugins.cmake), the process carrying on after each, folder
 * scans, the search path, models and metrics created by name. */
#include <elf.h>
#include <stdlib.h>
#include <unistd.h>

#include "bd/registry.h"
#include "harness.h"

#define FX(name) BD_FIXTURE_DIR "/bd_fx_" name ".so"

/* Load must fail with BD_E_PLUGIN naming the file, the stage and detail. */
static void check_refused(const char *file, const char *stage, const char *detail)
{
    char head[512];
    snprintf(head, sizeof head, "plugin '%s': %s: ", file, stage);
    CHECK_FAILS(bd_plugin_load(file), BD_E_PLUGIN, head);
    CHECK(strstr(bd_last_error(), detail) != NULL, "'%s' lacks '%s'",
          bd_last_error(), detail);
    printf("   %s\n", bd_last_error());
}

static void test_each_stage(void)
{
    check_refused(FX("missing"), "open", "No such file or directory");
    check_refused(FX("not_elf"), "elf", "expected the ELF magic 7f 45 4c 46");
    check_refused(FX("no_entry"), "symbol", "no entry point 'bd_plugin_init'");
    check_refused(FX("init_error"), "init", "bd_plugin_init returned i/o error:"
                  " fixture: cannot find its weights file");
    char want[128];
    snprintf(want, sizeof want, "plugin built for ABI %d.0, this host provides"
             " ABI %d.%d", BD_ABI_MAJOR + 1, BD_ABI_MAJOR, BD_ABI_MINOR);
    check_refused(FX("newer_major"), "abi", want);
    snprintf(want, sizeof want, "plugin built for ABI %d.%d, newer than this"
             " host's ABI %d.%d", BD_ABI_MAJOR, BD_ABI_MINOR + 1, BD_ABI_MAJOR,
             BD_ABI_MINOR);
    check_refused(FX("newer_minor"), "abi", want);
    check_refused(FX("wrong_sizes"), "abi", "type sizes 0x");
    check_refused(FX("small_info"), "abi", "bd_plugin_info is 12 bytes,"
                  " expected at least");
    check_refused(FX("no_info"), "init", "bd_plugin_init returned ok without"
                  " its plugin info, expected *info set");
    check_refused(FX("no_forward"), "validate", "denoiser 'fx_broken': required"
                  " callback 'forward' is NULL");
    CHECK(bd_plugin_count() == 0, "%d plugins after failures", bd_plugin_count());

    /* the process carries on: a good plugin still loads, once */
    CHECK_OK(bd_plugin_load(FX("good")));
    CHECK_OK(bd_plugin_load(FX("good")));
    CHECK(bd_plugin_count() == 1, "%d plugins", bd_plugin_count());
    check_refused(FX("duplicate"), "validate", "denoiser 'fx_linear' is already"
                  " provided by '" FX("good") "'");
    CHECK(bd_denoiser_count() == 1 && bd_metric_count() == 1, "%d, %d",
          bd_denoiser_count(), bd_metric_count());
    const bd_plugin_info *info = bd_plugin_info_at(0);
    CHECK(info && strcmp(info->name, "fx_good") == 0
          && info->denoisers[0] == bd_denoiser_find("fx_linear")
          && strcmp(bd_denoiser_path(0), FX("good")) == 0, "listing");
    bd_plugins_unload_all();
    CHECK(bd_plugin_count() == 0 && bd_denoiser_count() == 0, "unloaded");
}

/* A plugin built for an older minor of this major loads and runs: what the
 * newer minors added (ABI 1.1: host->tape_release) it never calls. */
static void test_older_minor(void)
{
    CHECK(BD_ABI_MINOR >= 1, "this test needs a minor before this host's");
    CHECK_OK(bd_plugin_load(FX("older_minor")));
    const bd_plugin_info *info = bd_plugin_info_at(0);
    CHECK(info && info->abi_version == BD_ABI_VERSION - 1
          && bd_denoiser_find("fx_linear"), "ABI %d.%d plugin listed", BD_ABI_MAJOR,
          BD_ABI_MINOR - 1);
    bd_model *m = NULL;
    bd_config *cfg = bd_config_new();
    CHECK_OK(bd_config_set_num(cfg, "channels", 2));
    CHECK_OK(bd_model_create("fx_linear", cfg, 7, &m));
    bd_config_free(cfg);
    bd_model_free(m);
    bd_plugins_unload_all();
}

/* The good fixture's bytes, copied into a file of its own (the good
 * fixture itself loads once per process). */
static unsigned char *read_good(long *size)
{
    FILE *f = fopen(FX("good"), "rb");
    CHECK(f != NULL, "cannot open the good fixture");
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)*size);
    CHECK(b && fread(b, 1, (size_t)*size, f) == (size_t)*size, "read");
    fclose(f);
    return b;
}

static void write_file(const char *path, const void *b, long n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b, 1, (size_t)n, f) == (size_t)n, "write %s", path);
    fclose(f);
}

/* A truncated or damaged shared object is refused before dlopen maps it
 * (a segment past the end of the file is a SIGBUS when touched). */
static void test_malformed_elf(void)
{
    long n;
    unsigned char *good = read_good(&n);
    char path[] = "/tmp/bd_fx_elf_XXXXXX.so";
    int fd = mkstemps(path, 3);
    CHECK(fd >= 0, "mkstemps");
    close(fd);
    const long cuts[] = {0, 10, 63, 64, 200, 1000, 3000, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        write_file(path, good, cuts[i]);
        CHECK_FAILS(bd_plugin_load(path), BD_E_PLUGIN, "': elf: ");
        CHECK(strstr(bd_last_error(), path) != NULL, "names the file: %s",
              bd_last_error());
        if (i == 0 || i == 6)
            printf("   %s\n", bd_last_error());
    }
    const Elf64_Ehdr *h = (const Elf64_Ehdr *)good;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(good + h->e_phoff);
    CHECK(ph[0].p_type == PT_LOAD, "the last two damage a loadable segment");
    struct {
        size_t at;      /* offset of the damaged bytes */
        uint64_t value; /* written there (8 bytes, or 1 when small) */
        int width;
        const char *expect;
    } damage[] = {
        {0, 0x7e, 1, "expected the ELF magic"},
        {EI_CLASS, ELFCLASS32, 1, "ELF class 1, expected 2"},
        {EI_DATA, ELFDATA2MSB, 1, "byte order 2, expected 1"},
        {offsetof(Elf64_Ehdr, e_type), ET_EXEC, 2, "ELF type 2, expected 3"},
        {offsetof(Elf64_Ehdr, e_machine), EM_MIPS, 2, "built for machine 8"},
        {offsetof(Elf64_Ehdr, e_phoff), (uint64_t)n, 8, "program headers at bytes"},
        {offsetof(Elf64_Ehdr, e_phnum), 0, 2, "0 program headers"},
        {offsetof(Elf64_Ehdr, e_shoff), (uint64_t)n, 8, "section headers at byte"},
        {h->e_phoff + offsetof(Elf64_Phdr, p_offset), (uint64_t)1 << 40, 8,
         "past the end of the file"},
        {h->e_phoff + offsetof(Elf64_Phdr, p_filesz), UINT64_MAX - 16, 8,
         "past the end of the file"},
    };
    unsigned char *bad = malloc((size_t)n);
    for (size_t i = 0; i < sizeof damage / sizeof *damage; i++) {
        memcpy(bad, good, (size_t)n);
        memcpy(bad + damage[i].at, &damage[i].value, (size_t)damage[i].width);
        write_file(path, bad, n);
        CHECK_FAILS(bd_plugin_load(path), BD_E_PLUGIN, damage[i].expect);
        printf("   %s\n", strstr(bd_last_error(), "elf:"));
    }
    CHECK(bd_plugin_count() == 0, "%d plugins", bd_plugin_count());
    unlink(path);
    free(bad);
    free(good);
    bd_plugins_unload_all();
}

static void test_folder_scan(void)
{
    int failed = -1;
    CHECK_OK(bd_plugin_load_dir(BD_FIXTURE_DIR, &failed));
    /* all but three fail: duplicate sorts before good and older_minor, so
     * both are refused as a second fx_linear (older_minor passes the abi
     * stage); no_size loads (its create fails later), shadow takes "unet" */
    CHECK(failed == 11, "%d fixtures failed, expected 11", failed);
    CHECK(bd_plugin_failure_count() == 11, "%d failures recorded",
          bd_plugin_failure_count());
    CHECK(bd_denoiser_find("fx_linear") != NULL, "fx_linear from the duplicate");
    CHECK(strstr(bd_plugin_failure(0), "bd_fx_good.so': validate: denoiser"
                 " 'fx_linear' is already provided by") != NULL, "%s",
          bd_plugin_failure(0));
    CHECK_FAILS(bd_plugin_load_dir(BD_FIXTURE_DIR "/nowhere", NULL), BD_E_IO,
                "cannot read folder");
    bd_plugins_unload_all();
}

static void test_search_path(void)
{
    setenv("BD_PLUGIN_PATH", "/nonexistent/bd:" BD_FIXTURE_DIR, 1);
    CHECK_FAILS(bd_plugin_add_path("/nonexistent/bd2"), BD_E_IO,
                "folder '/nonexistent/bd2' does not exist");
    CHECK_OK(bd_plugins_scan());
    CHECK(bd_plugin_search_count() == 3, "%d folders", bd_plugin_search_count());
    CHECK(strcmp(bd_plugin_search_dir(2), BD_FIXTURE_DIR) == 0, "order");
    CHECK(bd_denoiser_find("unet") && bd_denoiser_find("mlp"),
          "the build's plugins are found first");
    CHECK(bd_denoiser_find("fx_linear"), "BD_PLUGIN_PATH is searched");
    CHECK(bd_plugin_failure_count() == 13, "%d failures: 12 fixtures and the"
          " missing folder", bd_plugin_failure_count());
    bool shadow_said = false;
    for (int i = 0; i < bd_plugin_failure_count(); i++)
        shadow_said |= strstr(bd_plugin_failure(i), "bd_fx_shadow.so': validate:"
                              " denoiser 'unet' is already provided by") != NULL;
    CHECK(shadow_said, "the shadowing plugin is named among the failures");
    bd_model *m = NULL;
    CHECK_FAILS(bd_model_create("mine", NULL, 1, &m), BD_E_ARG,
                "unknown denoiser 'mine' (loaded: ");
    CHECK(strstr(bd_last_error(), "unet") && strstr(bd_last_error(), "BD_PLUGIN_PATH")
          && strstr(bd_last_error(), "searched: "), "hints: %s", bd_last_error());
    unsetenv("BD_PLUGIN_PATH");
    bd_plugins_unload_all();
    CHECK_OK(bd_plugin_add_path(BD_FIXTURE_DIR));
    CHECK(bd_plugin_search_count() == 2, "build folder, then the added one");
    bd_plugins_unload_all();
}

static void test_model_create(void)
{
    CHECK_OK(bd_plugin_load(FX("good")));
    bd_model *m = NULL;
    CHECK_FAILS(bd_model_create("fx_linaer", NULL, 1, &m), BD_E_ARG,
                "unknown denoiser 'fx_linaer' (loaded: ");
    CHECK(strstr(bd_last_error(), "fx_linear"), "lists the known ones");
    bd_config *cfg = bd_config_new();
    CHECK_OK(bd_config_set_num(cfg, "channels", 2));
    CHECK_OK(bd_config_set_num(cfg, "sise", 4));
    CHECK_FAILS(bd_model_create("fx_linear", cfg, 1, &m), BD_E_ARG,
                "unknown key 'sise' for fx_linear");
    CHECK_OK(bd_config_set_num(cfg, "channels", 9));
    CHECK_FAILS(bd_model_create("fx_linear", cfg, 1, &m), BD_E_ARG, "channels = 9");
    bd_config_free(cfg);

    CHECK_OK(bd_plugin_load(FX("no_size")));
    CHECK_FAILS(bd_model_create("fx_nosize", NULL, 1, &m), BD_E_PLUGIN,
                "denoiser 'fx_nosize': create returned an instance with"
                " channels = 0 and size = 0; its create must set"
                " inst->channels and inst->size");

    cfg = bd_config_new();
    CHECK_OK(bd_config_set_num(cfg, "channels", 2));
    CHECK_OK(bd_model_create("fx_linear", cfg, 7, &m));
    bd_config_free(cfg);
    CHECK(m && strcmp(m->arch, "fx_linear") == 0 && m->channels == 2
          && m->size == 8, "model fields");
    CHECK(bd_params_numel(m->params) == 4, "%lld params",
          (long long)bd_params_numel(m->params));

    bd_tape *tp = bd_tape_new();
    bd_tensor *x = bd_tensor_new4(3, 2, 8, 8, false);
    bd_tensor *t = bd_tensor_new4(3, 0, 0, 0, false);
    bd_tensor *cond = bd_tensor_new4(3, 2, 0, 0, false);
    bd_tensor_fill(x, 1.0f);
    bd_tensor_fill(t, 500.0f);
    bd_taps taps = {.n = 2, .names = {"scaled", "absent"}};
    bd_tensor *out = NULL;
    CHECK_OK(m->forward(m->state, tp, x, t, cond, &taps, &out));
    const float *w = bd_params_find(m->params, "scale.weight")->data;
    CHECK(out && fabsf(out->data[0] - (w[0] + 0.5f)) < 1e-6f
          && fabsf(out->data[64] - (w[1] + 0.5f)) < 1e-6f, "output");
    CHECK(taps.values[0] && taps.values[0]->data[0] == w[0] && !taps.values[1],
          "taps");
    bd_tensor_free(x);
    bd_tensor_free(t);
    bd_tensor_free(cond);
    bd_tape_free(tp);
    bd_model_free(m);
    bd_plugins_unload_all();
}

/* bd.model(name, cfg, {from = folder}) */
static void test_denoiser_from(void)
{
    CHECK_FAILS(bd_denoiser_load_from("fx_linear", "/nonexistent/bd"), BD_E_ARG,
                "from = '/nonexistent/bd' is not a folder");
    CHECK_FAILS(bd_denoiser_load_from("mine", BD_FIXTURE_DIR), BD_E_ARG,
                "model 'mine': no plugin in folder '" BD_FIXTURE_DIR "' provides it");
    CHECK(bd_denoiser_find("fx_linear") != NULL, "the folder was scanned");
    CHECK_FAILS(bd_denoiser_load_from("unet", BD_FIXTURE_DIR), BD_E_ARG,
                "but '");
    CHECK(strstr(bd_last_error(), "bd_unet.so' provides it"), "%s", bd_last_error());
    CHECK_OK(bd_denoiser_load_from("fx_nosize", BD_FIXTURE_DIR));
    int n = bd_plugin_search_count();
    CHECK_OK(bd_denoiser_load_from("fx_nosize", BD_FIXTURE_DIR "/"));
    CHECK_OK(bd_denoiser_load_from("fx_nosize", BD_FIXTURE_DIR "/"));
    CHECK(bd_plugin_search_count() == n + 1, "a folder is added once");
    bd_plugins_unload_all();
}

static void test_metric(void)
{
    bd_metric *m = NULL;
    CHECK_FAILS(bd_metric_create("fx_mean", NULL, &m), BD_E_ARG,
                "unknown metric 'fx_mean' (loaded: ");
    CHECK_OK(bd_plugin_load(FX("good")));
    bd_config *cfg = bd_config_new();
    CHECK_OK(bd_config_set_num(cfg, "offset", 1.0));
    CHECK_OK(bd_metric_create("fx_mean", cfg, &m));
    bd_config_free(cfg);
    bd_tensor *img = bd_tensor_new4(2, 1, 4, 4, false);
    bd_tensor *lab = bd_tensor_new4(2, 2, 0, 0, false);
    bd_tensor *bad = bd_tensor_new4(3, 2, 0, 0, false);
    bd_tensor_fill(img, 0.25f);
    lab->data[0] = 1, lab->data[1] = 2, lab->data[2] = 3, lab->data[3] = 4;
    bd_metric_result *r = bd_metric_result_new();
    CHECK_FAILS(bd_metric_compute(m, r), BD_E_STATE, "fx_mean: no batch seen");
    CHECK_FAILS(bd_metric_update(m, img, bad, NULL), BD_E_ARG,
                "labels have shape (3, 2), expected (2, 2)");
    CHECK_OK(bd_metric_update(m, img, lab, NULL));
    CHECK_OK(bd_metric_compute(m, r));
    CHECK(bd_metric_result_count(r) == 3, "%d entries", bd_metric_result_count(r));
    CHECK(strcmp(bd_metric_result_name(r, 0), "mean") == 0
          && bd_metric_result_number(r, 0) == 1.25, "mean");
    const bd_tensor *a = bd_metric_result_array(r, 2);
    CHECK(a && a->numel == 2 && a->data[0] == 2 && a->data[1] == 3, "label_mean");
    CHECK_FAILS(bd_metric_compute(m, r), BD_E_ARG, "'mean' is reported twice");
    CHECK_FAILS(bd_metric_result_add_number(r, "Bad", 1), BD_E_ARG,
                "name 'Bad', expected");
    bd_metric_result_free(r);
    bd_tensor_free(img);
    bd_tensor_free(lab);
    bd_tensor_free(bad);
    bd_metric_free(m);
    bd_plugins_unload_all();
}

int main(void)
{
    RUN(test_each_stage);
    RUN(test_older_minor);
    RUN(test_malformed_elf);
    RUN(test_folder_scan);
    RUN(test_search_path);
    RUN(test_model_create);
    RUN(test_denoiser_from);
    RUN(test_metric);
    return harness_summary();
}
