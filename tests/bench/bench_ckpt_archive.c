/* Archive size and extract time on a real training history.
 *
 * A small conditional diffusion MLP (tests/test_diffusion_model.h: 16x16
 * bump images, hidden 512, about 290k parameters) trains with AdamW and an
 * EMA through bd_train; every `every` steps a checkpoint holds the weights,
 * both AdamW moments, the EMA and the training state, saved as the trainer
 * would (zstd level 3, byte shuffle where it helps). Then, for each level:
 *
 *   raw f32      the tensors' bytes
 *   zstd alone   each checkpoint saved by itself at that level (.bdc, with
 *                byte shuffle), and the raw .bdc files through plain zstd
 *   archive      bd_archive_create at that level
 *
 * and the time to extract the last step (the longest chain from a key
 * entry) and every step on average (CPU time, create too). Then the
 * analysis archive (optimizer state at key entries only): its size against
 * the checkpoints alone and the full archive, extract time, and a check
 * that every step's weights and EMA (and every key step's file) come back
 * bit for bit. At level 3 it also splits the bytes by
 * kind of tensor (weights, EMA, AdamW m and v; "state" is the rest: headers,
 * indexes, key/values and the archive's own index), .bdc alone against the
 * archive, and gives the model part (weights + EMA) alone.
 *
 *   bench_ckpt_archive [checkpoints=24] [every=100] [keep_dir]
 *
 * With a keep_dir that already holds checkpoints (ckpt/step_<N>.bdc, from
 * an earlier run), those are measured and nothing is trained.
 */
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "bd/ckpt.h"
#include "bd/train.h"
#include "../test_diffusion_model.h"

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double now(void) { return clock_s(CLOCK_MONOTONIC); }

/* Archive timings are CPU time of this process: on a shared machine, wall
 * time mostly measures the load. */
static double cpu(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static void must(bd_status s)
{
    if (s != BD_OK) {
        printf("bench_ckpt_archive: %s\n", bd_last_error());
        exit(1);
    }
}

typedef struct history {
    char     dir[512];
    int      n;
    uint64_t steps[256];
    uint64_t raw_f32;  /* tensor bytes over all checkpoints */
} history;

static void add_prefixed(bd_ckpt *ck, const char *prefix, const char *name,
                         const bd_tensor *t)
{
    char full[300];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    must(bd_ckpt_add_tensor(ck, full, t));
}

static bd_ckpt *checkpoint(bd_trainer *tr)
{
    bd_ckpt *ck = bd_ckpt_new();
    const bd_params *p = bd_trainer_model(tr)->params;
    for (int i = 0; i < bd_params_count(p); i++) {
        const char *name = bd_params_name(p, i);
        add_prefixed(ck, "", name, bd_params_at(p, i));
        add_prefixed(ck, "optim.m.", name, bd_adamw_m(bd_trainer_adamw(tr), i));
        add_prefixed(ck, "optim.v.", name, bd_adamw_v(bd_trainer_adamw(tr), i));
        add_prefixed(ck, "ema.", name, bd_ema_at(bd_trainer_ema(tr), i));
    }
    const bd_train_state *st = bd_trainer_state(tr);
    int64_t rng[5] = {(int64_t)st->rng.block[0], (int64_t)st->rng.block[1],
                      (int64_t)st->rng.block[2], (int64_t)st->rng.block[3],
                      (int64_t)st->rng.used};
    must(bd_ckpt_set_str(ck, "bd.arch", "tiny"));
    must(bd_ckpt_set_i64(ck, "bd.step", st->step));
    must(bd_ckpt_set_i64(ck, "bd.epoch", st->epoch));
    must(bd_ckpt_set_i64(ck, "bd.position", st->position));
    must(bd_ckpt_set_u64(ck, "bd.rng.counter", st->rng.counter));
    must(bd_ckpt_set_i64s(ck, "bd.rng.block", rng, 5));
    must(bd_ckpt_set_i64(ck, "bd.optim.steps", bd_adamw_steps(bd_trainer_adamw(tr))));
    return ck;
}

static bd_status on_report(bd_trainer *tr, const bd_train_report *r, void *ud)
{
    history *h = ud;
    bd_ckpt *ck = checkpoint(tr);
    char path[700];
    snprintf(path, sizeof path, "%s/ckpt/step_%lld.bdc", h->dir, (long long)r->step);
    bd_ckpt_save_opts o = {.level = 3};
    bd_status s = bd_ckpt_save(ck, path, &o);
    for (size_t i = 0; i < bd_ckpt_tensor_count(ck); i++)
        h->raw_f32 += bd_ckpt_tensor_at(ck, i)->nbytes;
    bd_ckpt_free(ck);
    h->steps[h->n++] = (uint64_t)r->step;
    printf("  step %5lld  loss %.4f\n", (long long)r->step, r->loss);
    return s;
}

static void train(history *h, int n, int every)
{
    bd_data_spec spec = bd_data_defaults();
    spec.size = spec.canvas = 16;
    spec.dx = spec.dy = 0.5;
    bd_dataset *d = NULL;
    must(bd_dataset_new(&spec, &d));
    bd_model *m = tiny_new(16, 512, 1);
    bd_train_opts o = bd_train_defaults();
    o.steps = (int64_t)n * every;
    o.every = every;
    o.lr = 1e-3;
    o.warmup = every;
    o.seed = 1;
    printf("training: %lld bumps of 16x16, %lld parameters, %lld steps, AdamW"
           " lr %g, EMA %g\n", (long long)d->train.n,
           (long long)bd_params_numel(m->params), (long long)o.steps, o.lr, o.ema);
    double t0 = now();
    must(bd_train(m, d, &o, on_report, h));
    printf("trained and saved %d checkpoints in %.1f s\n", h->n, now() - t0);
    bd_model_free(m);
    bd_dataset_free(d);
}

static int by_step(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The checkpoints an earlier run left in h->dir/ckpt, in step order. */
static void find_history(history *h)
{
    char sub[600];
    snprintf(sub, sizeof sub, "%s/ckpt", h->dir);
    DIR *d = opendir(sub);
    struct dirent *e;
    while (d && (e = readdir(d)) && h->n < 256) {
        unsigned long long step;
        char tail[8];
        if (sscanf(e->d_name, "step_%llu%7s", &step, tail) == 2
            && strcmp(tail, ".bdc") == 0)
            h->steps[h->n++] = step;
    }
    if (d)
        closedir(d);
    qsort(h->steps, (size_t)h->n, sizeof h->steps[0], by_step);
    for (int i = 0; i < h->n; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/step_%llu.bdc", sub,
                 (unsigned long long)h->steps[i]);
        bd_ckpt *ck;
        must(bd_ckpt_load(path, &ck));
        for (size_t t = 0; t < bd_ckpt_tensor_count(ck); t++)
            h->raw_f32 += bd_ckpt_tensor_at(ck, t)->nbytes;
        bd_ckpt_free(ck);
    }
    if (h->n)
        printf("measuring the %d checkpoints in %s (steps %llu to %llu)\n", h->n,
               sub, (unsigned long long)h->steps[0],
               (unsigned long long)h->steps[h->n - 1]);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void step_path(const history *h, int i, char *buf, size_t len)
{
    snprintf(buf, len, "%s/ckpt/step_%llu.bdc", h->dir,
             (unsigned long long)h->steps[i]);
}

/* Each checkpoint alone: saved as .bdc at `level`, and its raw (level 0)
 * .bdc through plain zstd at `level`. */
static void alone(const history *h, int level, uint64_t *bdc, uint64_t *plain)
{
    *bdc = *plain = 0;
    for (int i = 0; i < h->n; i++) {
        char path[700];
        step_path(h, i, path, sizeof path);
        bd_ckpt *ck;
        must(bd_ckpt_load(path, &ck));
        uint8_t *bytes;
        size_t len;
        bd_ckpt_save_opts o = {.level = level};
        must(bd_ckpt_encode(ck, &o, &bytes, &len));
        *bdc += len;
        free(bytes);
        o.level = 0;
        must(bd_ckpt_encode(ck, &o, &bytes, &len));
        size_t cap = ZSTD_compressBound(len);
        uint8_t *z = malloc(cap);
        *plain += ZSTD_compress(z, cap, bytes, len, level);
        free(z);
        free(bytes);
        bd_ckpt_free(ck);
    }
}

/* ---- bytes by kind of tensor --------------------------------------------- */

enum { WEIGHTS, EMA, ADAM_M, ADAM_V, STATE, N_KINDS };
static const char *const kind_names[N_KINDS] = {"weights", "ema", "adam m",
                                                "adam v", "state"};

static int kind_of(const char *name)
{
    if (strncmp(name, "ema.", 4) == 0)
        return EMA;
    if (strncmp(name, "optim.m.", 8) == 0)
        return ADAM_M;
    if (strncmp(name, "optim.v.", 8) == 0)
        return ADAM_V;
    return WEIGHTS;
}

typedef struct kinds {
    double raw[N_KINDS], alone[N_KINDS], archive[N_KINDS];
} kinds;

/* Checkpoint i's bytes by kind, stored alone at `level` (.bdc). */
static void kinds_alone(const history *h, int i, int level, kinds *k)
{
    char path[700];
    step_path(h, i, path, sizeof path);
    bd_ckpt *ck, *back;
    must(bd_ckpt_load(path, &ck));
    uint8_t *bytes;
    size_t len;
    bd_ckpt_save_opts o = {.level = level};
    must(bd_ckpt_encode(ck, &o, &bytes, &len));
    must(bd_ckpt_load_mem(bytes, len, path, &back));
    double tensors = 0;
    for (size_t t = 0; t < bd_ckpt_tensor_count(back); t++) {
        const bd_ckpt_tensor *x = bd_ckpt_tensor_at(back, t);
        int kind = x->dtype == BD_CKPT_F32 ? kind_of(x->name) : STATE;
        k->raw[kind] += (double)x->nbytes;
        k->alone[kind] += (double)x->stored.stored_size;
        tensors += (double)x->stored.stored_size;
    }
    k->alone[STATE] += (double)len - tensors;
    free(bytes);
    bd_ckpt_free(back);
    bd_ckpt_free(ck);
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The archive's payload bytes by kind, from its index (FORMAT.md: entries
 * of 48 bytes, n_tensors at +40, then u8 coding, u64 stored per tensor, in
 * the order of the checkpoint's tensor records, which is name order). */
static void kinds_archive(const history *h, const char *bda, kinds *k)
{
    FILE *f = fopen(bda, "rb");
    uint64_t size = file_size(bda);
    uint8_t *b = malloc(size);
    if (!f || fread(b, 1, size, f) != size) {
        printf("bench_ckpt_archive: cannot read %s\n", bda);
        exit(1);
    }
    fclose(f);
    const uint8_t *p = b + le64(b + 32);
    double tensors = 0;
    for (int i = 0; i < h->n; i++, p += 48 + 9 * le64(p + 40)) {
        char path[700];
        step_path(h, i, path, sizeof path);
        bd_ckpt *ck;
        must(bd_ckpt_load(path, &ck));
        for (size_t t = 0; t < bd_ckpt_tensor_count(ck); t++) {
            const bd_ckpt_tensor *x = bd_ckpt_tensor_at(ck, t);
            double stored = (double)le64(p + 48 + 9 * t + 1);
            k->archive[x->dtype == BD_CKPT_F32 ? kind_of(x->name) : STATE] += stored;
            tensors += stored;
        }
        bd_ckpt_free(ck);
    }
    k->archive[STATE] += (double)size - tensors;
    free(b);
}

static void print_kinds(const history *h, const char *bda, int level)
{
    kinds k = {0};
    for (int i = 0; i < h->n; i++)
        kinds_alone(h, i, level, &k);
    kinds_archive(h, bda, &k);
    printf("  by kind, level %d   raw MB   .bdc alone MB   archive MB   archive/alone\n",
           level);
    double raw = 0, alone = 0, archive = 0;
    for (int i = 0; i < N_KINDS; i++) {
        printf("  %-16s %8.2f %15.2f %12.2f %15.3f\n", kind_names[i],
               k.raw[i] / 1e6, k.alone[i] / 1e6, k.archive[i] / 1e6,
               k.archive[i] / k.alone[i]);
        raw += k.raw[i], alone += k.alone[i], archive += k.archive[i];
    }
    double model_alone = k.alone[WEIGHTS] + k.alone[EMA];
    double model_archive = k.archive[WEIGHTS] + k.archive[EMA];
    printf("  %-16s %8.2f %15.2f %12.2f %15.3f\n", "all", raw / 1e6,
           alone / 1e6, archive / 1e6, archive / alone);
    printf("  %-16s %8.2f %15.2f %12.2f %15.3f\n", "weights + ema",
           (k.raw[WEIGHTS] + k.raw[EMA]) / 1e6, model_alone / 1e6,
           model_archive / 1e6, model_archive / model_alone);
}

static void measure(const history *h, int level, int key_every, bool by_kind)
{
    char bda[700];
    snprintf(bda, sizeof bda, "%s/run_l%d_k%d.bda", h->dir, level, key_every);
    uint64_t bdc, plain;
    alone(h, level, &bdc, &plain);
    bd_archive_opts o = {.level = level, .key_every = key_every};
    double t0 = cpu();
    must(bd_archive_create(h->dir, bda, &o));
    double t_create = cpu() - t0;
    uint64_t size = file_size(bda);

    bd_archive *a;
    must(bd_archive_open(bda, &a));
    uint8_t *bytes;
    size_t len;
    t0 = cpu();
    must(bd_archive_extract_mem(a, h->steps[h->n - 1], &bytes, &len));
    double t_last = cpu() - t0;
    free(bytes);
    t0 = cpu();
    for (int i = 0; i < h->n; i++) {
        must(bd_archive_extract_mem(a, h->steps[i], &bytes, &len));
        free(bytes);
    }
    double t_mean = (cpu() - t0) / h->n;
    bd_archive_close(a);

    printf("level %2d key_every %2d | raw f32 %6.1f MB | alone: .bdc %6.1f MB,"
           " plain zstd %6.1f MB | archive %6.1f MB = %.2f of .bdc alone,"
           " %.2f of plain zstd, %.2f of raw | CPU: create %.1f s, extract last"
           " %.0f ms, mean %.0f ms\n", level, key_every, h->raw_f32 / 1e6,
           bdc / 1e6, plain / 1e6, size / 1e6, (double)size / (double)bdc,
           (double)size / (double)plain, (double)size / (double)h->raw_f32,
           t_create, 1e3 * t_last, 1e3 * t_mean);
    if (by_kind)
        print_kinds(h, bda, level);
    unlink(bda);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    *len = file_size(path);
    FILE *f = fopen(path, "rb");
    uint8_t *b = malloc(*len ? *len : 1);
    if (!f || !b || fread(b, 1, *len, f) != *len) {
        printf("bench_ckpt_archive: cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    return b;
}

/* Every tensor of the analysis checkpoint equals the original's, and the
 * original has nothing else but its optimizer state. */
static bool analysis_matches(const bd_ckpt *orig, const uint8_t *bytes, size_t len)
{
    bd_ckpt *an;
    must(bd_ckpt_load_mem(bytes, len, "extracted", &an));
    size_t optim = 0;
    bool same = bd_ckpt_is_analysis(an);
    for (size_t t = 0; t < bd_ckpt_tensor_count(orig); t++) {
        const bd_ckpt_tensor *x = bd_ckpt_tensor_at(orig, t);
        const bd_ckpt_tensor *y = bd_ckpt_tensor_find(an, x->name);
        optim += strncmp(x->name, "optim.", 6) == 0;
        if (strncmp(x->name, "optim.", 6) != 0)
            same = same && y && y->nbytes == x->nbytes
                && memcmp(y->data, x->data, x->nbytes) == 0;
    }
    same = same && bd_ckpt_tensor_count(an) + optim == bd_ckpt_tensor_count(orig);
    bd_ckpt_free(an);
    return same;
}

static void measure_analysis(const history *h, int level, int key_every)
{
    char bda[700], full[700];
    snprintf(bda, sizeof bda, "%s/analysis_l%d_k%d.bda", h->dir, level, key_every);
    snprintf(full, sizeof full, "%s/full_l%d_k%d.bda", h->dir, level, key_every);
    uint64_t bdc, plain;
    alone(h, level, &bdc, &plain);
    bd_archive_opts o = {.level = level, .key_every = key_every};
    must(bd_archive_create(h->dir, full, &o));
    o.optimizer_at_keys = true;
    double t0 = cpu();
    must(bd_archive_create(h->dir, bda, &o));
    double t_create = cpu() - t0;
    uint64_t size = file_size(bda), full_size = file_size(full);
    bd_archive *a;
    must(bd_archive_open(bda, &a));
    int exact = 0, keys = 0;
    double t_extract = 0;
    for (int i = 0; i < h->n; i++) {
        char path[700];
        step_path(h, i, path, sizeof path);
        uint8_t *bytes, *want;
        size_t len, want_len;
        t0 = cpu();
        must(bd_archive_extract_mem(a, h->steps[i], &bytes, &len));
        t_extract += cpu() - t0;
        want = read_all(path, &want_len);
        bd_ckpt *orig;
        must(bd_ckpt_load_mem(want, want_len, path, &orig));
        bool key = bd_archive_entry_at(a, (size_t)i).key;
        keys += key;
        exact += key ? len == want_len && memcmp(bytes, want, len) == 0
                     : analysis_matches(orig, bytes, len);
        bd_ckpt_free(orig);
        free(want);
        free(bytes);
    }
    bd_archive_close(a);
    printf("analysis level %2d key_every %2d | %d key steps of %d | archive %6.1f MB"
           " = %.3f of .bdc alone (%.1f MB), %.3f of the full archive (%.1f MB) |"
           " CPU: create %.1f s, extract mean %.0f ms | %d of %d steps bit-exact"
           " (key steps the whole file, others weights, EMA and the rest but the"
           " optimizer state)\n", level, key_every, keys, h->n, size / 1e6,
           (double)size / (double)bdc, bdc / 1e6, (double)size / (double)full_size,
           full_size / 1e6, t_create, 1e3 * t_extract / h->n, exact, h->n);
    unlink(bda);
    unlink(full);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 24, every = argc > 2 ? atoi(argv[2]) : 100;
    history *h = calloc(1, sizeof *h);
    if (n < 2 || n > 256 || every < 1) {
        printf("usage: bench_ckpt_archive [checkpoints=24 (2..256)] [every=100]"
               " [keep_dir]\n");
        return 2;
    }
    if (argc > 3) {
        snprintf(h->dir, sizeof h->dir, "%s", argv[3]);
        mkdir(h->dir, 0755);
    } else {
        snprintf(h->dir, sizeof h->dir, "/tmp/bench_ckpt_XXXXXX");
        if (!mkdtemp(h->dir))
            return 1;
    }
    char sub[600];
    snprintf(sub, sizeof sub, "%s/ckpt", h->dir);
    mkdir(sub, 0755);
    find_history(h);
    if (h->n == 0)
        train(h, n, every);
    bool analysis_only = getenv("BENCH_ANALYSIS_ONLY") != NULL;
    if (!analysis_only) {
        measure(h, 3, 16, true);
        measure(h, 3, 8, false);
        measure(h, 9, 16, false);
        measure(h, 19, 16, false);
    }
    measure_analysis(h, 9, 16);
    measure_analysis(h, 9, h->n);
    measure_analysis(h, 19, h->n);
    if (argc <= 3) {
        for (int i = 0; i < h->n; i++) {
            char path[700];
            step_path(h, i, path, sizeof path);
            unlink(path);
        }
        rmdir(sub);
        rmdir(h->dir);
    }
    free(h);
    return 0;
}
