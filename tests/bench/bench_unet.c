/* bd's unet, loaded through the plugin host, timed on a training step and a
 * sampling step against the sgemm ceiling measured in the same run.
 *
 *   bench_unet [--threads N] [--widths 32,64] [--batches 64,128]
 *   bench_unet --flops WIDTH     forward and training FLOPs per image and
 *                                the parameter count of the recipe
 *   bench_unet --ceiling         the sgemm ceilings only
 *   bench_unet [--reps K] --one MODE WIDTH BATCH CEILING
 *                                one configuration (run_peer.sh); --reps K
 *                                times exactly K steps (at most 10: profiling)
 *
 * train   draw t and eps, q_sample, forward, eps-prediction MSE, backward,
 *         AdamW (lr 3e-4, weight decay 0.01, grad-norm clip 1.0), as bd's
 *         trainer does;
 * sample  one forward with grad off.
 * 32x32 one-channel images. Each (mode, width, batch) runs in a fresh child
 * process (this program re-executed) so its ru_maxrss is its own: WARMUP
 * steps (the tape's arena settles into one block on the second), then timed
 * steps until BUDGET_S has passed, at least MIN_REPS of them unless they
 * take 3 BUDGET_S, at most MAX_REPS; the median is reported.
 *
 * FLOPs are counted analytically from the recipe (PAPER.md, "Model"):
 * 2 per multiply-add of every convolution, linear layer and attention
 * product (q k^T, p v); norms, activations, softmax, pooling and resampling
 * are not counted. A training step counts 3x the forward (forward, grads of
 * inputs, grads of weights). unet_torch.py reads these counts through
 * --flops, so both sides divide by the same numbers.
 *
 * Memory: the tape arena's peak + parameters and their grads + the AdamW
 * moments, and the child's ru_maxrss growth from just before the model is
 * built (what unet_torch.py reports for PyTorch).
 *
 * One line per configuration, for run_peer.sh:
 *   RESULT bd <mode> <width> <batch> <img/s> <GFLOP/s> <peak MiB> <ms/step>
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bd/diffusion.h"
#include "bd/parallel.h"
#include "bd/registry.h"

enum { SIZE = 32, CHANNELS = 1, EMB = 256, SEED = 1, WARMUP = 2,
       MIN_REPS = 3, MAX_REPS = 10 };
#define BUDGET_S 10.0

/* ---- the recipe's FLOPs and parameters --------------------------------------- */

typedef struct tally {
    double  flops;   /* forward, per image */
    int64_t params;
} tally;

/* k x k conv, no bias, at hw x hw */
static void conv(tally *t, int64_t in, int64_t out, int64_t k, int64_t hw)
{
    t->flops += 2.0 * (double)(k * k * in * out * hw * hw);
    t->params += k * k * in * out;
}

/* tokens x (in -> out) with bias */
static void linear(tally *t, int64_t in, int64_t out, int64_t tokens)
{
    t->flops += 2.0 * (double)(tokens * in * out);
    t->params += in * out + out;
}

/* conv in->mid, GroupNorm(1), GELU, conv mid->out, GroupNorm(1) */
static void double_conv(tally *t, int64_t in, int64_t out, int64_t mid, int64_t hw)
{
    conv(t, in, mid, 3, hw);
    conv(t, mid, out, 3, hw);
    t->params += 2 * mid + 2 * out;
}

/* LayerNorm, qkv, q k^T and p v over all heads, proj; LayerNorm, ff1, ff2 */
static void attention(tally *t, int64_t c, int64_t tokens)
{
    linear(t, c, 3 * c, tokens);
    t->flops += 2.0 * 2.0 * (double)(tokens * tokens * c);
    linear(t, c, c, tokens);
    linear(t, c, c, tokens);
    linear(t, c, c, tokens);
    t->params += 4 * c;
}

/* double convs (in, in, residual) and (in, out, mid), + Linear(3E -> out),
 * self-attention */
static void block(tally *t, int64_t in, int64_t out, int64_t mid, int64_t hw)
{
    double_conv(t, in, in, in, hw);
    double_conv(t, in, out, mid, hw);
    linear(t, 3 * EMB, out, 1);
    attention(t, out, hw * hw);
}

static tally recipe(int64_t c)
{
    tally t = {0};
    double_conv(&t, CHANNELS, c, c, SIZE);
    block(&t, c, 2 * c, 2 * c, SIZE / 2);
    block(&t, 2 * c, 4 * c, 4 * c, SIZE / 4);
    block(&t, 4 * c, 4 * c, 4 * c, SIZE / 8);
    double_conv(&t, 4 * c, 8 * c, 8 * c, SIZE / 8);
    double_conv(&t, 8 * c, 8 * c, 8 * c, SIZE / 8);
    double_conv(&t, 8 * c, 4 * c, 4 * c, SIZE / 8);
    block(&t, 8 * c, 2 * c, 4 * c, SIZE / 4);
    block(&t, 4 * c, c, 2 * c, SIZE / 2);
    block(&t, 2 * c, c, c, SIZE);
    conv(&t, c, CHANNELS, 1, SIZE);
    t.params += CHANNELS;
    return t;
}

/* ---- timing ------------------------------------------------------------------ */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double maxrss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* Page faults so far: a warm step that allocates nothing takes none. */
static long page_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt + ru.ru_majflt;
}

/* ---- the sgemm ceiling ---------------------------------------------------------- */

/* Median GFLOP/s of `reps` runs of `batch` products C (m, n) = A (m, k) B (k, n),
 * one B and C per product (as per-image im2col columns), after one warm-up. */
static double sgemm_gflops(int m, int n, int k, int batch, int reps)
{
    float *a = malloc(sizeof(float) * (size_t)m * k);
    float *b = malloc(sizeof(float) * (size_t)k * n * batch);
    float *c = malloc(sizeof(float) * (size_t)m * n * batch);
    double t[16];
    if (!a || !b || !c) {
        fprintf(stderr, "bench_unet: out of memory for the sgemm ceiling\n");
        exit(1);
    }
    for (size_t i = 0; i < (size_t)m * k; i++)
        a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)k * n * batch; i++)
        b[i] = (float)(i % 5) * 0.1f;
    for (int r = -1; r < reps; r++) {
        double t0 = now();
        for (int i = 0; i < batch; i++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f,
                        a, k, b + (size_t)i * k * n, n, 0.0f,
                        c + (size_t)i * m * n, n);
        if (r >= 0)
            t[r] = now() - t0;
    }
    free(a), free(b), free(c);
    return 2.0 * m * n * (double)k * batch / median(t, reps) / 1e9;
}

/* Print the ceilings: a large square product and the per-image im2col
 * product of the width-64 net's 32x32 convolutions. Returns the square's. */
static double ceilings(int threads)
{
    printf("OpenBLAS %s, core %s, %d threads\n", openblas_get_config(),
           openblas_get_corename(), threads);
    const double square = sgemm_gflops(2048, 2048, 2048, 1, 5);
    const double im2col = sgemm_gflops(64, 1024, 576, 64, 5);
    printf("CEILING %.1f %.1f\n", square, im2col);
    printf("sgemm ceiling: square 2048 %.1f GFLOP/s; per-image im2col 64x1024x576"
           " (x64 images) %.1f GFLOP/s\n", square, im2col);
    fflush(stdout);
    return square;
}

/* ---- one configuration ---------------------------------------------------------- */

typedef struct bench {
    bd_model    *m;
    bd_schedule *s;
    bd_adamw    *opt;
    bd_tape     *tp;
    bd_tensor   *x0, *eps, *cond, *tf;
    int64_t     *t;
    bd_rng       rng;
} bench;

static void check(bd_status s, const char *what)
{
    if (s != BD_OK) {
        fprintf(stderr, "bench_unet: %s: %s\n", what, bd_last_error());
        exit(1);
    }
}

static bd_model *make_model(int64_t width)
{
    bd_config *cfg = bd_config_new();
    bd_model *m = NULL;
    if (!cfg) {
        fprintf(stderr, "bench_unet: out of memory\n");
        exit(1);
    }
    check(bd_config_set_num(cfg, "width", (double)width), "config");
    check(bd_model_create("unet", cfg, SEED, &m), "bd_model_create(\"unet\")");
    bd_config_free(cfg);
    return m;
}

/* The AdamW state only for training, so sampling's memory is its own. */
static void bench_setup(bench *b, int64_t width, int64_t batch, bool train)
{
    const bd_diffusion_spec spec = bd_diffusion_defaults();
    b->m = make_model(width);
    check(bd_schedule_new(&spec, &b->s), "schedule");
    if (train)
        check(bd_adamw_new(b->m->params, bd_adamw_defaults(), &b->opt), "adamw");
    b->tp = bd_tape_new();
    b->x0 = bd_tensor_new4(batch, CHANNELS, SIZE, SIZE, false);
    b->eps = bd_tensor_new4(batch, CHANNELS, SIZE, SIZE, false);
    b->cond = bd_tensor_new4(batch, 2, 0, 0, false);
    b->tf = bd_tensor_new4(batch, 0, 0, 0, false);
    b->t = malloc(sizeof(int64_t) * (size_t)batch);
    if (!b->tp || !b->x0 || !b->eps || !b->cond || !b->tf || !b->t) {
        fprintf(stderr, "bench_unet: out of memory\n");
        exit(1);
    }
    b->rng = bd_rng_make(SEED, 0);
    bd_rng_fill_uniform(&b->rng, b->x0->data, b->x0->numel, -1.0f, 1.0f);
    bd_rng_fill_uniform(&b->rng, b->cond->data, b->cond->numel, 0.0f, SIZE);
    bd_rng_fill_normal(&b->rng, b->eps->data, b->eps->numel, 0.0f, 1.0f);
    bd_tensor_fill(b->tf, 500.0f);
}

static void train_step(bench *b)
{
    const int64_t n = b->x0->shape[0];
    bd_tensor *loss;
    for (int64_t i = 0; i < n; i++)
        b->t[i] = (int64_t)bd_rng_below(&b->rng, (uint32_t)b->s->T);
    bd_rng_fill_normal(&b->rng, b->eps->data, b->eps->numel, 0.0f, 1.0f);
    bd_tape_reset(b->tp);
    check(bd_diffusion_loss(b->tp, b->m, b->s, b->x0, b->cond, b->t, b->eps,
                            NULL, &loss), "training loss");
    bd_params_zero_grad(b->m->params);
    check(bd_tape_backward(b->tp, loss), "backward");
    check(bd_adamw_step(b->opt, 3e-4f, NULL), "adamw step");
}

/* x_t = eps at t = 500: the denoiser's forward with grad off */
static void sample_step(bench *b)
{
    bd_tensor *out;
    bd_tape_reset(b->tp);
    check(b->m->forward(b->m->state, b->tp, b->eps, b->tf, b->cond, NULL, &out),
          "sampling forward");
}

/* The plugin's parameter count against the recipe's. */
static void check_params(const bd_model *m, int64_t width, const tally *r)
{
    const int64_t n = bd_params_numel(m->params);
    printf("PARAMS bd %lld %lld\n", (long long)width, (long long)n);
    if (n != r->params) {
        fprintf(stderr, "bench_unet: the unet plugin has %lld parameters at"
                " width %lld, the recipe %lld\n", (long long)n,
                (long long)width, (long long)r->params);
        exit(1);
    }
}

/* fixed_reps > 0: exactly that many timed steps, and their CLOCK_MONOTONIC
 * span on stderr (for perf record -k CLOCK_MONOTONIC, then perf report
 * --time FROM,TO); else the policy above. */
static void run_one(const char *mode, int64_t width, int64_t batch,
                    double ceiling, int fixed_reps)
{
    const bool train = !strcmp(mode, "train");
    const tally r = recipe(width);
    const double base = maxrss_mib();
    bench b = {0};
    double times[MAX_REPS], spent = 0.0;
    if (fixed_reps > MAX_REPS)
        fixed_reps = MAX_REPS;
    int reps = 0;
    bench_setup(&b, width, batch, train);
    check_params(b.m, width, &r);
    bd_tape_set_grad(b.tp, train);
    for (int i = 0; i < WARMUP; i++)
        train ? train_step(&b) : sample_step(&b);
    const long faults = page_faults();
    while (fixed_reps ? reps < fixed_reps
                      : reps < MAX_REPS && (spent < BUDGET_S
                                            || (reps < MIN_REPS && spent < 3 * BUDGET_S))) {
        double t0 = now();
        train ? train_step(&b) : sample_step(&b);
        times[reps] = now() - t0;
        spent += times[reps++];
    }
    if (fixed_reps)
        fprintf(stderr, "timed steps: %.6f,%.6f\n", now() - spent, now());
    const double sec = median(times, reps);
    const double gflops = (train ? 3.0 : 1.0) * r.flops * (double)batch / sec / 1e9;
    const double params = (double)bd_params_numel(b.m->params) * sizeof(float);
    const double accounted = (double)bd_tape_arena_peak(b.tp)
                           + params * (train ? 4.0 : 2.0);
    printf("RESULT bd %s %lld %lld %.2f %.1f %.0f %.1f\n", mode, (long long)width,
           (long long)batch, (double)batch / sec, gflops, maxrss_mib() - base,
           sec * 1e3);
    printf("  %s width %lld batch %lld: %d reps, %.0f%% of the square sgemm ceiling,"
           " %.0f page faults per step; arena peak %.0f MiB + parameters and grads"
           " %.0f MiB%s = %.0f MiB\n", mode, (long long)width, (long long)batch,
           reps, 100.0 * gflops / ceiling, (double)(page_faults() - faults) / reps,
           (double)bd_tape_arena_peak(b.tp) / 1048576.0, 2.0 * params / 1048576.0,
           train ? " + AdamW moments" : "", accounted / 1048576.0);
    fflush(stdout);
    bd_tensor_free(b.x0), bd_tensor_free(b.eps), bd_tensor_free(b.cond);
    bd_tensor_free(b.tf), free(b.t);
    bd_tape_free(b.tp);
    if (b.opt)
        bd_adamw_free(b.opt);
    bd_schedule_free(b.s);
    bd_model_free(b.m);
    bd_plugins_unload_all();
}

/* ---- the driver ---------------------------------------------------------------- */

/* Re-run this program as `--one mode width batch ceiling`, wait for it. */
static void spawn_one(const char *mode, const char *width, const char *batch,
                      double ceiling, int threads)
{
    char ceil_s[32], threads_s[16];
    snprintf(ceil_s, sizeof ceil_s, "%.3f", ceiling);
    snprintf(threads_s, sizeof threads_s, "%d", threads);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "bench_unet", "--threads", threads_s, "--one",
              mode, width, batch, ceil_s, (char *)NULL);
        perror("bench_unet: exec");
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)
        || WEXITSTATUS(status)) {
        fprintf(stderr, "bench_unet: %s width %s batch %s failed\n", mode, width,
                batch);
        exit(1);
    }
}

/* Forward and training FLOPs per image of each width. */
static void print_flops(const char *widths)
{
    char list[64];
    snprintf(list, sizeof list, "%s", widths);
    for (char *w = strtok(list, ","); w; w = strtok(NULL, ",")) {
        const tally r = recipe(atoll(w));
        printf("width %s: %lld parameters, %.3f GFLOP/img forward, %.3f GFLOP/img"
               " training step\n", w, (long long)r.params, r.flops / 1e9,
               3.0 * r.flops / 1e9);
    }
}

int main(int argc, char **argv)
{
    const char *widths = "32,64", *batches = "64,128";
    int threads = 2;
    bool ceiling_only = false;
    int reps = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--flops") && i + 1 < argc) {
            const tally r = recipe(atoll(argv[i + 1]));
            printf("%.0f %.0f %lld\n", r.flops, 3.0 * r.flops, (long long)r.params);
            return 0;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--ceiling")) {
            ceiling_only = true;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
            bd_set_num_threads(threads);
        } else if (!strcmp(argv[i], "--one") && i + 4 < argc) {
            run_one(argv[i + 1], atoll(argv[i + 2]), atoll(argv[i + 3]),
                    atof(argv[i + 4]), reps);
            return 0;
        } else if (!strcmp(argv[i], "--widths") && i + 1 < argc) {
            widths = argv[++i];
        } else if (!strcmp(argv[i], "--batches") && i + 1 < argc) {
            batches = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_unet [--threads N] [--widths 32,64]"
                    " [--batches 64,128] | --flops WIDTH | --ceiling"
                    " | [--reps K] --one MODE WIDTH BATCH CEILING\n");
            return 2;
        }
    }
    openblas_set_num_threads(threads);
    const double square = ceilings(threads);
    if (ceiling_only)
        return 0;
    print_flops(widths);
    static const char *const modes[] = {"train", "sample"};
    for (int mo = 0; mo < 2; mo++) {
        char wl[64], bl[64];
        snprintf(wl, sizeof wl, "%s", widths);
        for (char *ws, *w = strtok_r(wl, ",", &ws); w; w = strtok_r(NULL, ",", &ws)) {
            snprintf(bl, sizeof bl, "%s", batches);
            for (char *bs, *b = strtok_r(bl, ",", &bs); b; b = strtok_r(NULL, ",", &bs))
                spawn_one(modes[mo], w, b, square, threads);
        }
    }
    return 0;
}
