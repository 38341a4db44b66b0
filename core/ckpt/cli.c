/* `bdrun ckpt ...`: look at, check, compare, export, import and archive
 * checkpoints without writing a script. */
#include "format.h"
#include "bd/npy.h"
#include "bd/safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char USAGE[] =
    "usage: %s <command> ...\n"
    "  inspect FILE.bdc                 header, keys and tensors\n"
    "  verify FILE.bdc|FILE.bda...      run every check of the format; of an\n"
    "                                   archive, every entry's frames and the\n"
    "                                   checkpoint it rebuilds\n"
    "  diff A.bdc B.bdc                 keys and tensors that differ (exit 1)\n"
    "  export FILE.bdc TENSOR OUT.npy   one tensor as a NumPy file\n"
    "  export FILE.bdc OUT.safetensors [ema=0|1]\n"
    "                                   a unet's weights (default: its EMA\n"
    "                                   weights if it has them) in the names of\n"
    "                                   tests/bench/unet_torch.py\n"
    "  import IN.safetensors OUT.bdc    such weights back into a unet checkpoint\n"
    "  archive RUN_DIR OUT.bda [level=N] [key_every=K] [optimizer=all|keys]\n"
    "                                   pack RUN_DIR/ckpt/step_<N>.bdc\n"
    "                                   (defaults: level=9 key_every=20\n"
    "                                   optimizer=all); optimizer=keys keeps the\n"
    "                                   optimizer state in key steps only (they\n"
    "                                   resume) and every other step as an\n"
    "                                   analysis checkpoint: weights, EMA and\n"
    "                                   keys bit-exact, for sampling, no resume\n"
    "  ls OUT.bda                       the archive's steps\n"
    "  extract OUT.bda STEP [OUT.bdc]   one step, bit-identical to the original\n"
    "                                   or to its analysis checkpoint\n"
    "                                   (default output: step_<STEP>.bdc)\n";

static int usage(const char *prog)
{
    fprintf(stderr, USAGE, prog);
    return 2;
}

static int failed(void)
{
    fprintf(stderr, "error: %s\n", bd_last_error());
    return 1;
}

/* ---- inspect ------------------------------------------------------------- */

static void print_kv(const bd_ckpt_kv *kv)
{
    printf("  %-32s %-6s ", kv->key, bdc_type_name(kv->type));
    switch (kv->type) {
    case BD_CKPT_U64: printf("%" PRIu64, kv->v.u64); break;
    case BD_CKPT_I64: printf("%" PRId64, kv->v.i64); break;
    case BD_CKPT_F64: printf("%.17g", kv->v.f64); break;
    case BD_CKPT_STR: printf("\"%s\"", kv->v.str); break;
    default:
        printf("[%" PRIu64 "]", kv->n);
        for (uint64_t i = 0; i < kv->n && i < 8; i++) {
            if (kv->type == BD_CKPT_ARR_I64)
                printf(" %" PRId64, kv->v.i64s[i]);
            else
                printf(" %.9g", kv->v.f64s[i]);
        }
        if (kv->n > 8)
            printf(" ...");
    }
    printf("\n");
}

/* min, max, mean and non-finite count of a float32 tensor. */
static void print_stats(const bd_ckpt_tensor *t)
{
    const float *x = t->data;
    uint64_t n = t->nbytes / 4, bad = 0;
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            bad++;
            continue;
        }
        lo = fmin(lo, x[i]);
        hi = fmax(hi, x[i]);
        sum += x[i];
    }
    if (n > bad)
        printf("  min %.4g max %.4g mean %.4g", lo, hi, sum / (double)(n - bad));
    if (bad)
        printf("  %" PRIu64 " NaN/Inf", bad);
}

static void print_tensor(const bd_ckpt_tensor *t)
{
    static const char *const codecs[] = {"raw", "zstd"};
    char dims[200], how[32];
    const bd_ckpt_storage *st = &t->stored;
    int at = snprintf(how, sizeof how, "%s%s", codecs[st->codec],
                      st->filter ? "+shuffle" : "");
    if (st->codec == BDC_CODEC_ZSTD)
        snprintf(how + at, sizeof how - (size_t)at, " l%d", st->level);
    printf("  %-32s %-3s %-18s %-14s %10" PRIu64 " -> %10" PRIu64,
           t->name, bdc_dtype_name(t->dtype),
           bdc_dims_str(t->ndim, t->dims, dims, sizeof dims), how, t->nbytes,
           st->stored_size);
    if (t->dtype == BD_CKPT_F32)
        print_stats(t);
    printf("\n");
}

static int cmd_inspect(const char *path)
{
    uint8_t *bytes;
    size_t len;
    bd_ckpt *ck;
    if (bd_read_file(path, &bytes, &len) != BD_OK)
        return failed();
    bd_status s = bd_ckpt_load_mem(bytes, len, path, &ck);
    bdc_header h;
    if (s == BD_OK)
        bdc_header_decode(bytes, &h);
    free(bytes);
    if (s != BD_OK)
        return failed();
    uint64_t raw = 0;
    for (size_t i = 0; i < ck->n_tensors; i++)
        raw += ck->tensors[i].nbytes;
    printf("%s: format %u.%u, %zu bytes (%" PRIu64 " of tensors), alignment %u,"
           " index %" PRIu64 " bytes\n", path, h.major, h.minor, len, raw,
           h.alignment, h.index_size);
    printf("keys (%zu):\n", ck->n_kv);
    for (size_t i = 0; i < ck->n_kv; i++)
        print_kv(&ck->kvs[i]);
    printf("tensors (%zu):     name, dtype, shape, storage, raw -> stored bytes\n",
           ck->n_tensors);
    for (size_t i = 0; i < ck->n_tensors; i++)
        print_tensor(&ck->tensors[i]);
    bd_ckpt_free(ck);
    return 0;
}

/* The file starts with the archive magic. */
static bool is_archive(const char *path)
{
    char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    bool yes = f && fread(magic, 1, 4, f) == 4 && memcmp(magic, BDA_MAGIC, 4) == 0;
    if (f)
        fclose(f);
    return yes;
}

static void print_entry_check(void *ctx, bd_archive_entry e, const char *failure)
{
    (void)ctx;
    if (failure)
        printf("FAIL  %s\n", failure);
    else
        printf("ok    step %" PRIu64 "%s\n", e.step, e.key ? " (key)" : "");
}

/* Every entry of an archive, then a summary line; 0 when all are good. */
static int verify_archive(const char *path)
{
    bd_archive *a;
    if (bd_archive_open(path, &a) != BD_OK) {
        printf("FAIL  %s\n", bd_last_error());
        return 1;
    }
    size_t bad = 0, n = bd_archive_count(a);
    bd_status s = bd_archive_verify(a, print_entry_check, NULL, &bad);
    bd_archive_close(a);
    if (s != BD_OK) {
        printf("FAIL  %s\n", bd_last_error());
        return 1;
    }
    printf("%s  %s: %zu of %zu entries verified%s\n", bad ? "FAIL" : "ok  ",
           path, n - bad, n, bad ? ", the others damaged or not checkable"
                                 : " (frames, tensor and file checksums)");
    return bad ? 1 : 0;
}

static int cmd_verify(int n, char **paths)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (is_archive(paths[i])) {
            bad |= verify_archive(paths[i]);
        } else if (bd_ckpt_verify(paths[i]) == BD_OK) {
            printf("ok    %s\n", paths[i]);
        } else {
            printf("FAIL  %s\n", bd_last_error());
            bad = 1;
        }
    }
    return bad;
}

/* ---- diff ---------------------------------------------------------------- */

static bool kv_same(const bd_ckpt_kv *a, const bd_ckpt_kv *b)
{
    if (a->type != b->type || a->n != b->n)
        return false;
    if (a->type == BD_CKPT_STR)
        return memcmp(a->v.str, b->v.str, a->n) == 0;
    if (a->type == BD_CKPT_ARR_I64 || a->type == BD_CKPT_ARR_F64)
        return memcmp(a->v.i64s, b->v.i64s, 8 * a->n) == 0;
    return a->v.u64 == b->v.u64;
}

static int diff_kvs(const bd_ckpt *a, const bd_ckpt *b)
{
    int n = 0;
    for (size_t i = 0; i < a->n_kv; i++) {
        const bd_ckpt_kv *y = bd_ckpt_kv_find(b, a->kvs[i].key);
        if (!y) {
            printf("- key   ");
            print_kv(&a->kvs[i]);
            n++;
        } else if (!kv_same(&a->kvs[i], y)) {
            printf("< key   ");
            print_kv(&a->kvs[i]);
            printf("> key   ");
            print_kv(y);
            n++;
        }
    }
    for (size_t i = 0; i < b->n_kv; i++)
        if (!bd_ckpt_kv_find(a, b->kvs[i].key)) {
            printf("+ key   ");
            print_kv(&b->kvs[i]);
            n++;
        }
    return n;
}

/* Elements whose bits differ and, for f32, the largest |a - b|. */
static bool diff_values(const bd_ckpt_tensor *x, const bd_ckpt_tensor *y)
{
    size_t width = bdc_elem_size(x->dtype);
    uint64_t n = x->nbytes / width, differ = 0;
    double worst = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *p = (const uint8_t *)x->data + i * width;
        const uint8_t *q = (const uint8_t *)y->data + i * width;
        if (memcmp(p, q, width) == 0)
            continue;
        differ++;
        if (x->dtype == BD_CKPT_F32)
            worst = fmax(worst, fabs((double)((const float *)x->data)[i]
                                     - ((const float *)y->data)[i]));
    }
    if (differ) {
        printf("~ tensor %s: %" PRIu64 " of %" PRIu64 " elements differ", x->name,
               differ, n);
        if (x->dtype == BD_CKPT_F32)
            printf(", max |a - b| = %.6g", worst);
        printf("\n");
    }
    return differ > 0;
}

static int diff_tensors(const bd_ckpt *a, const bd_ckpt *b)
{
    int n = 0;
    char da[200], db[200];
    for (size_t i = 0; i < a->n_tensors; i++) {
        const bd_ckpt_tensor *x = &a->tensors[i];
        const bd_ckpt_tensor *y = bd_ckpt_tensor_find(b, x->name);
        if (!y) {
            printf("- tensor %s\n", x->name);
            n++;
        } else if (x->dtype != y->dtype || x->ndim != y->ndim
                   || memcmp(x->dims, y->dims, sizeof(int64_t) * (size_t)x->ndim)) {
            printf("~ tensor %s: %s %s vs %s %s\n", x->name,
                   bdc_dtype_name(x->dtype), bdc_dims_str(x->ndim, x->dims, da, 200),
                   bdc_dtype_name(y->dtype), bdc_dims_str(y->ndim, y->dims, db, 200));
            n++;
        } else {
            n += diff_values(x, y);
        }
    }
    for (size_t i = 0; i < b->n_tensors; i++)
        if (!bd_ckpt_tensor_find(a, b->tensors[i].name)) {
            printf("+ tensor %s\n", b->tensors[i].name);
            n++;
        }
    return n;
}

static int cmd_diff(const char *pa, const char *pb)
{
    bd_ckpt *a, *b;
    if (bd_ckpt_load(pa, &a) != BD_OK)
        return failed();
    if (bd_ckpt_load(pb, &b) != BD_OK) {
        bd_ckpt_free(a);
        return failed();
    }
    int n = diff_kvs(a, b) + diff_tensors(a, b);
    printf(n ? "%d differences\n" : "identical\n", n);
    bd_ckpt_free(a);
    bd_ckpt_free(b);
    return n ? 1 : 0;
}

/* ---- export and import --------------------------------------------------- */

static int cmd_export_npy(const char *path, const char *name, const char *out)
{
    bd_ckpt *ck;
    if (bd_ckpt_load(path, &ck) != BD_OK)
        return failed();
    const bd_ckpt_tensor *t = bd_ckpt_tensor_find(ck, name);
    bd_status s = t ? bd_npy_save(out, t->dtype, t->ndim, t->dims, t->data)
                    : bd_fail(BD_E_ARG, "export: '%s' has no tensor '%s'", path,
                              name);
    if (s == BD_OK)
        printf("%s: %s -> %s\n", path, name, out);
    bd_ckpt_free(ck);
    return s == BD_OK ? 0 : failed();
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool has_ema(const bd_ckpt *ck)
{
    for (size_t i = 0; i < ck->n_tensors; i++)
        if (strncmp(ck->tensors[i].name, "ema.", 4) == 0)
            return true;
    return false;
}

/* export CKPT OUT.safetensors [ema=0|1]: the unet in the recipe's names. */
static int cmd_export_torch(const char *prog, int argc, char **argv)
{
    int ema = argc < 3 ? -1 : !strcmp(argv[2], "ema=1") ? 1
            : !strcmp(argv[2], "ema=0") ? 0 : -2;
    if (ema == -2) {
        fprintf(stderr, "export: bad option '%s' (ema=0 or ema=1)\n", argv[2]);
        return usage(prog);
    }
    bd_ckpt *ck, *st = NULL;
    if (bd_ckpt_load(argv[0], &ck) != BD_OK)
        return failed();
    bool use_ema = ema < 0 ? has_ema(ck) : ema == 1;
    bd_status s = bd_unet_to_torch(ck, use_ema, &st);
    if (s == BD_OK)
        s = bd_safetensors_save(st, argv[1]);
    if (s == BD_OK)
        printf("%s: %zu %s tensors -> %s (PyTorch recipe names)\n", argv[0],
               bd_ckpt_tensor_count(st), use_ema ? "EMA" : "weight", argv[1]);
    bd_ckpt_free(st);
    bd_ckpt_free(ck);
    return s == BD_OK ? 0 : failed();
}

/* import IN.safetensors OUT.bdc: recipe names back to a unet checkpoint. */
static int cmd_import(const char *in, const char *out)
{
    bd_ckpt *st, *ck = NULL;
    if (bd_safetensors_load(in, &st) != BD_OK)
        return failed();
    bd_status s = bd_unet_from_torch(st, &ck);
    if (s == BD_OK)
        s = bd_ckpt_save(ck, out, NULL);
    if (s == BD_OK)
        printf("%s: %zu tensors -> %s (unet)\n", in, bd_ckpt_tensor_count(ck), out);
    bd_ckpt_free(ck);
    bd_ckpt_free(st);
    return s == BD_OK ? 0 : failed();
}

/* ---- archives ------------------------------------------------------------ */

/* "key=N" with N an integer in [lo, hi]. */
static bool option(const char *arg, const char *key, int lo, int hi, int *v)
{
    size_t n = strlen(key);
    if (strncmp(arg, key, n) != 0 || arg[n] != '=')
        return false;
    char *end;
    errno = 0;
    long x = strtol(arg + n + 1, &end, 10);
    if (errno || *end || end == arg + n + 1 || x < lo || x > hi)
        return false;
    *v = (int)x;
    return true;
}

/* "optimizer=all" or "optimizer=keys". */
static bool optimizer_option(const char *arg, bool *at_keys)
{
    bool all = strcmp(arg, "optimizer=all") == 0;
    bool keys = strcmp(arg, "optimizer=keys") == 0;
    if (all || keys)
        *at_keys = keys;
    return all || keys;
}

/* The archive's first argument is a run folder, the one holding ckpt/:
 * given the ckpt/ folder itself (or a checkpoint file), say what to pass. */
static bd_status check_run_dir(const char *dir)
{
    char sub[4200];
    struct stat st;
    snprintf(sub, sizeof sub, "%s/ckpt", dir);
    if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
        return BD_OK;
    char parent[4200];
    snprintf(parent, sizeof parent, "%s", dir);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/')
        parent[--n] = '\0';
    char *slash = strrchr(parent, '/');
    const char *base = slash ? slash + 1 : parent;
    if (slash)
        *slash = '\0';
    if (strcmp(base, "ckpt") == 0)
        return bd_fail(BD_E_ARG, "archive: '%s' is a run's checkpoint folder;"
                       " pass the run folder that holds it: %s", dir,
                       slash ? (parent[0] ? parent : "/") : ".");
    if (stat(dir, &st) == 0 && S_ISREG(st.st_mode))
        return bd_fail(BD_E_ARG, "archive: '%s' is a file; pass a run folder"
                       " (the one whose ckpt/ holds step_<N>.bdc)", dir);
    return bd_fail(BD_E_ARG, "archive: '%s' has no ckpt/ folder, expected a run"
                   " folder whose ckpt/ holds step_<N>.bdc (as bd.train writes"
                   " with run = bd.run(name) and ckpt_every)", dir);
}

static int cmd_archive(const char *prog, int argc, char **argv)
{
    bd_archive_opts o = bd_archive_defaults();
    for (int i = 2; i < argc; i++)
        if (!option(argv[i], "level", 1, BDC_LEVEL_MAX, &o.level)
            && !option(argv[i], "key_every", 1, 1 << 30, &o.key_every)
            && !optimizer_option(argv[i], &o.optimizer_at_keys)) {
            fprintf(stderr, "archive: bad option '%s' (level=1..%d,"
                    " key_every=K >= 1, optimizer=all|keys)\n", argv[i],
                    BDC_LEVEL_MAX);
            return usage(prog);
        }
    if (check_run_dir(argv[0]) != BD_OK)
        return failed();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (bd_archive_create(argv[0], argv[1], &o) != BD_OK)
        return failed();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    bd_archive *a;
    if (bd_archive_open(argv[1], &a) != BD_OK)
        return failed();
    uint64_t original = 0;
    for (size_t i = 0; i < bd_archive_count(a); i++)
        original += bd_archive_entry_at(a, i).file_size;
    struct stat st;
    uint64_t stored = stat(argv[1], &st) == 0 ? (uint64_t)st.st_size : 0;
    printf("%s: %zu checkpoints, %" PRIu64 " bytes -> %" PRIu64 " (%.1f%%),"
           " level %d, key every %d%s, %.2f s\n", argv[1], bd_archive_count(a),
           original, stored, original ? 100.0 * (double)stored / (double)original
                                      : 0.0,
           o.level, o.key_every, o.optimizer_at_keys ? ", optimizer state at"
           " key steps only" : "",
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    bd_archive_close(a);
    return 0;
}

static int cmd_ls(const char *path)
{
    bd_archive *a;
    if (bd_archive_open(path, &a) != BD_OK)
        return failed();
    printf("%20s %4s %9s %8s %14s %14s\n", "step", "key", "kind", "tensors",
           "bytes", "stored");
    for (size_t i = 0; i < bd_archive_count(a); i++) {
        bd_archive_entry e = bd_archive_entry_at(a, i);
        printf("%20" PRIu64 " %4s %9s %8" PRIu64 " %14" PRIu64 " %14" PRIu64 "\n",
               e.step, e.key ? "*" : "", e.analysis ? "analysis" : "full",
               e.n_tensors, e.file_size, e.stored_size);
    }
    bd_archive_close(a);
    return 0;
}

static int cmd_extract(const char *prog, int argc, char **argv)
{
    char *end, out[64];
    errno = 0;
    unsigned long long step = strtoull(argv[1], &end, 10);
    if (errno || *end || end == argv[1] || argv[1][0] == '-') {
        fprintf(stderr, "extract: bad step '%s'\n", argv[1]);
        return usage(prog);
    }
    bd_ckpt_step_path(out, sizeof out, NULL, step); /* 64 bytes hold any */
    const char *target = argc > 2 ? argv[2] : out;
    bd_archive *a;
    if (bd_archive_extract(argv[0], step, target) != BD_OK
        || bd_archive_open(argv[0], &a) != BD_OK)
        return failed();
    bool analysis = false;
    for (size_t i = 0; i < bd_archive_count(a); i++)
        if (bd_archive_entry_at(a, i).step == step)
            analysis = bd_archive_entry_at(a, i).analysis;
    bd_archive_close(a);
    printf("%s: step %llu -> %s%s\n", argv[0], step, target, analysis
           ? " (an analysis checkpoint: weights, EMA and keys as trained, no"
             " optimizer state; it cannot resume)" : "");
    return 0;
}

int bd_ckpt_main(int argc, char **argv)
{
    const char *prog = argc > 0 ? argv[0] : "ckpt";
    if (argc < 2)
        return usage(prog);
    const char *cmd = argv[1];
    int n = argc - 2;
    char **args = argv + 2;
    if (strcmp(cmd, "inspect") == 0 && n == 1)
        return cmd_inspect(args[0]);
    if (strcmp(cmd, "verify") == 0 && n >= 1)
        return cmd_verify(n, args);
    if (strcmp(cmd, "diff") == 0 && n == 2)
        return cmd_diff(args[0], args[1]);
    if (strcmp(cmd, "export") == 0 && (n == 2 || n == 3)
        && ends_with(args[1], ".safetensors"))
        return cmd_export_torch(prog, n, args);
    if (strcmp(cmd, "export") == 0 && n == 3)
        return cmd_export_npy(args[0], args[1], args[2]);
    if (strcmp(cmd, "import") == 0 && n == 2)
        return cmd_import(args[0], args[1]);
    if (strcmp(cmd, "archive") == 0 && n >= 2 && n <= 5)
        return cmd_archive(prog, n, args);
    if (strcmp(cmd, "ls") == 0 && n == 1)
        return cmd_ls(args[0]);
    if (strcmp(cmd, "extract") == 0 && (n == 2 || n == 3))
        return cmd_extract(prog, n, args);
    return usage(prog);
}
