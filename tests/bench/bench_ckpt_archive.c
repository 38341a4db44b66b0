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
 * entry) and every step on average.
 *
 *   bench_ckpt_archive [checkpoints=24] [every=100] [keep_dir]
 */
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "bd/ckpt.h"
#include "bd/train.h"
#include "../test_diffusion_model.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

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

static void measure(const history *h, int level, int key_every)
{
    char bda[700];
    snprintf(bda, sizeof bda, "%s/run_l%d_k%d.bda", h->dir, level, key_every);
    uint64_t bdc, plain;
    alone(h, level, &bdc, &plain);
    bd_archive_opts o = {.level = level, .key_every = key_every};
    double t0 = now();
    must(bd_archive_create(h->dir, bda, &o));
    double t_create = now() - t0;
    uint64_t size = file_size(bda);

    bd_archive *a;
    must(bd_archive_open(bda, &a));
    uint8_t *bytes;
    size_t len;
    t0 = now();
    must(bd_archive_extract_mem(a, h->steps[h->n - 1], &bytes, &len));
    double t_last = now() - t0;
    free(bytes);
    t0 = now();
    for (int i = 0; i < h->n; i++) {
        must(bd_archive_extract_mem(a, h->steps[i], &bytes, &len));
        free(bytes);
    }
    double t_mean = (now() - t0) / h->n;
    bd_archive_close(a);

    printf("level %2d key_every %2d | raw f32 %6.1f MB | alone: .bdc %6.1f MB,"
           " plain zstd %6.1f MB | archive %6.1f MB = %.2f of .bdc alone,"
           " %.2f of plain zstd, %.2f of raw | create %.1f s, extract last"
           " %.0f ms, mean %.0f ms\n", level, key_every, h->raw_f32 / 1e6,
           bdc / 1e6, plain / 1e6, size / 1e6, (double)size / (double)bdc,
           (double)size / (double)plain, (double)size / (double)h->raw_f32,
           t_create, 1e3 * t_last, 1e3 * t_mean);
    unlink(bda);
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
    train(h, n, every);
    measure(h, 3, 16);
    measure(h, 3, 8);
    measure(h, 9, 16);
    measure(h, 19, 16);
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
