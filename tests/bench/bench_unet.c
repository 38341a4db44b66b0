/* bd's unet, loaded through the plugin host, timed on a training step and a
 * sampling step against the fp32 FMA peak and the sgemm ceiling measured in
 * the same run.
 *
 *   bench_unet [--threads N] [--widths 32,64] [--batches 64,128] [NET]
 *   bench_unet --flops WIDTH [NET]   forward and training FLOPs per image
 *                                    and the parameter count of the recipe
 *   bench_unet --ceiling             the FMA peak and sgemm ceilings only
 *   bench_unet [--reps K] [NET] --one MODE WIDTH BATCH PEAK
 *                                    one configuration (run_peer.sh); --reps
 *                                    K times exactly K steps (profiling)
 * NET: --size S (32, image side), --emb E (256), --attention BLOCKS: "all"
 * (the six blocks), "none", or a comma-separated list of down1, down2,
 * down3, up1, up2, up3 (at 32x32, down2,down3,up1 attend at 8x8 and 4x4).
 *
 * train   steps of bd's trainer (bd_trainer_run, what bd.train runs) on
 *         Gaussian bumps: draw a batch, t and eps, q_sample, forward,
 *         eps-prediction MSE, backward, AdamW (lr 3e-4, weight decay 0.01,
 *         grad-norm clip 1.0), EMA 0.999;
 * sample  one forward of the denoiser with grad off (a step of bd.sample).
 * One-channel images. Each (mode, width, batch) runs in a fresh child
 * process (this program re-executed) so its ru_maxrss is its own: WARMUP
 * steps (the tape's arena settles on the second), then timed steps until
 * BUDGET_S has passed, at least MIN_REPS of them unless they take 3 BUDGET_S,
 * at most MAX_REPS; the median is reported, with the CPU time per step and
 * the page faults per warm step.
 *
 * FLOPs are counted analytically from the recipe (docs/PAPER.md, "Model"):
 * 2 per multiply-add of every convolution, linear layer and attention
 * product (q k^T, p v); norms, activations, softmax, pooling and resampling
 * are not counted. A training step counts 3x the forward (forward, grads of
 * inputs, grads of weights). unet_torch.py reads these counts through
 * --flops, so both sides divide by the same numbers.
 *
 * Memory: the tape arena's peak + parameters and their grads + the AdamW
 * moments and EMA, and the child's ru_maxrss growth from just before the
 * model is built (what unet_torch.py reports for PyTorch).
 *
 * One line per configuration, for run_peer.sh:
 *   RESULT bd <mode> <width> <batch> <img/s> <GFLOP/s> <peak MiB> <ms/step>
 */
#include <cblas.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bd/data.h"
#include "bd/diffusion.h"
#include "bd/parallel.h"
#include "bd/registry.h"
#include "bd/train.h"
#include "bench_clock.h"

enum { CHANNELS = 1, SEED = 1, WARMUP = 2, MIN_REPS = 3, MAX_REPS = 10 };
#define BUDGET_S 10.0

/* The net's shape beyond its width (the unet plugin's config). */
typedef struct net_shape {
    int64_t     size, emb;
    const char *attention; /* "all", "none" or the unet's attention_blocks */
} net_shape;

static const char *const BLOCKS[6] = {"down1", "down2", "down3", "up1", "up2", "up3"};

/* Does block `i` (of BLOCKS) attend? */
static bool attends(const net_shape *s, int i)
{
    if (!strcmp(s->attention, "all"))
        return true;
    const size_t len = strlen(BLOCKS[i]);
    for (const char *p = s->attention; *p;) {
        const size_t n = strcspn(p, ",");
        if (n == len && !strncmp(p, BLOCKS[i], len))
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}

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
 * self-attention if it attends */
static void block(tally *t, const net_shape *s, int i, int64_t in, int64_t out,
                  int64_t mid, int64_t hw)
{
    double_conv(t, in, in, in, hw);
    double_conv(t, in, out, mid, hw);
    linear(t, 3 * s->emb, out, 1);
    if (attends(s, i))
        attention(t, out, hw * hw);
}

static tally recipe(int64_t c, const net_shape *s)
{
    tally t = {0};
    const int64_t n = s->size;
    double_conv(&t, CHANNELS, c, c, n);
    block(&t, s, 0, c, 2 * c, 2 * c, n / 2);
    block(&t, s, 1, 2 * c, 4 * c, 4 * c, n / 4);
    block(&t, s, 2, 4 * c, 4 * c, 4 * c, n / 8);
    double_conv(&t, 4 * c, 8 * c, 8 * c, n / 8);
    double_conv(&t, 8 * c, 8 * c, 8 * c, n / 8);
    double_conv(&t, 8 * c, 4 * c, 4 * c, n / 8);
    block(&t, s, 3, 8 * c, 2 * c, 4 * c, n / 4);
    block(&t, s, 4, 4 * c, c, 2 * c, n / 2);
    block(&t, s, 5, 2 * c, c, c, n);
    conv(&t, c, CHANNELS, 1, n);
    t.params += CHANNELS;
    return t;
}

/* ---- timing ------------------------------------------------------------------ */

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

/* ---- the ceilings ----------------------------------------------------------------- */

enum { FMA_CHAINS = 12, FMA_ITERS = 50 * 1000 * 1000 };

/* NAME(out): FMA_ITERS rounds of FMA_CHAINS independent FMAs on VEC (LANES
 * floats), compiled for TARGET; stores a sum in *out so the work is not
 * optimised away. */
#define FMA_LOOP(NAME, TARGET, VEC, LANES, SET1, FMADD, STORE)                 \
    __attribute__((target(TARGET))) static void *NAME(void *out)               \
    {                                                                          \
        VEC acc[FMA_CHAINS];                                                   \
        const VEC a = SET1(0.999999f), b = SET1(1e-7f);                        \
        for (int c = 0; c < FMA_CHAINS; c++)                                   \
            acc[c] = SET1((float)c);                                           \
        for (int i = 0; i < FMA_ITERS; i++)                                    \
            for (int c = 0; c < FMA_CHAINS; c++)                               \
                acc[c] = FMADD(acc[c], a, b);                                  \
        float sum = 0.0f, lanes[LANES];                                        \
        for (int c = 0; c < FMA_CHAINS; c++) {                                 \
            STORE(lanes, acc[c]);                                              \
            sum += lanes[0];                                                   \
        }                                                                      \
        *(float *)out = sum;                                                   \
        return NULL;                                                           \
    }

FMA_LOOP(fma_loop_ymm, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps,
         _mm256_storeu_ps)
FMA_LOOP(fma_loop_zmm, "avx512f", __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps,
         _mm512_storeu_ps)

/* GFLOP/s of `loop` (LANES-wide FMAs) on `threads` threads at once (2 FLOPs
 * per lane and FMA). */
static double fma_rate(void *(*loop)(void *), int lanes, int threads)
{
    pthread_t tid[64];
    float sums[64];
    threads = threads < 1 ? 1 : threads > 64 ? 64 : threads;
    const double t0 = now();
    for (int i = 0; i < threads; i++)
        pthread_create(&tid[i], NULL, loop, &sums[i]);
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    const double sec = now() - t0;
    return 2.0 * lanes * FMA_CHAINS * (double)FMA_ITERS * threads / sec / 1e9;
}

/* The fp32 FMA peak on `threads` threads, the best of three runs of the
 * widest FMA the CPU has: 512-bit where it has AVX-512F (some cores run a
 * zmm FMA at full width, twice the ymm rate; others split it in two, the
 * same rate), else 256-bit. The peak no fp32 code exceeds. */
static double fma_peak(int threads)
{
    const bool zmm = __builtin_cpu_supports("avx512f");
    double peak = 0.0;
    for (int i = 0; i < 3; i++) {
        const double p = zmm ? fma_rate(fma_loop_zmm, 16, threads)
                             : fma_rate(fma_loop_ymm, 8, threads);
        peak = p > peak ? p : peak;
    }
    return peak;
}

/* Median GFLOP/s of `reps` runs of `batch` products C (m, n) = A (m, k) B (k, n)
 * through bd_gemm (the sgemm bd runs), one B and C per product (as per-image
 * im2col columns), after one warm-up. */
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
            bd_gemm(false, false, m, n, k, 1.0f, a, k, b + (size_t)i * k * n, n,
                    0.0f, c + (size_t)i * m * n, n);
        if (r >= 0)
            t[r] = now() - t0;
    }
    free(a), free(b), free(c);
    return 2.0 * m * n * (double)k * batch / median(t, reps) / 1e9;
}

/* Print the ceilings: the FMA peak (the best of three), a large square
 * product and the per-image im2col product of the width-64 net's 32x32
 * convolutions. Returns the FMA peak. */
static double ceilings(int threads)
{
    printf("OpenBLAS %s, core %s; sgemm %s; %d threads\n", openblas_get_config(),
           openblas_get_corename(), bd_gemm_name(), threads);
    const double peak = fma_peak(threads);
    const double square = sgemm_gflops(2048, 2048, 2048, 1, 5);
    const double im2col = sgemm_gflops(64, 1024, 576, 64, 5);
    printf("CEILING %.1f %.1f %.1f\n", peak, square, im2col);
    printf("fp32 FMA peak %.1f GFLOP/s (%s); sgemm: square 2048 %.1f GFLOP/s,"
           " per-image im2col 64x1024x576 (x64 images) %.1f GFLOP/s\n", peak,
           __builtin_cpu_supports("avx512f") ? "512-bit" : "256-bit", square, im2col);
    fflush(stdout);
    return peak;
}

/* ---- one configuration ---------------------------------------------------------- */

static void check(bd_status s, const char *what)
{
    if (s != BD_OK) {
        fprintf(stderr, "bench_unet: %s: %s\n", what, bd_last_error());
        exit(1);
    }
}

static void *need(void *p)
{
    if (!p) {
        fprintf(stderr, "bench_unet: out of memory\n");
        exit(1);
    }
    return p;
}

static bd_model *make_model(int64_t width, const net_shape *s)
{
    bd_config *cfg = need(bd_config_new());
    bd_model *m = NULL;
    const bool none = !strcmp(s->attention, "none");
    check(bd_config_set_num(cfg, "width", (double)width), "config");
    check(bd_config_set_num(cfg, "size", (double)s->size), "config");
    check(bd_config_set_num(cfg, "emb", (double)s->emb), "config");
    check(bd_config_set_num(cfg, "attention", none ? 0 : 1), "config");
    if (!none && strcmp(s->attention, "all"))
        check(bd_config_set_str(cfg, "attention_blocks", s->attention), "config");
    check(bd_model_create("unet", cfg, SEED, &m), "bd_model_create(\"unet\")");
    bd_config_free(cfg);
    return m;
}

/* The timed steps: wall and CPU seconds of each, the faults since warm-up. */
typedef struct timing {
    int    fixed, reps, seen;
    double wall[MAX_REPS], cpu[MAX_REPS], spent, t0, c0, start;
    long   faults;
} timing;

/* Call after each step; false once enough steps are timed. */
static bool timing_step(timing *tm)
{
    const double t = now(), c = cpu_now();
    if (tm->seen++ == WARMUP) {
        tm->faults = page_faults();
        tm->start = t;
    } else if (tm->seen > WARMUP) {
        tm->wall[tm->reps] = t - tm->t0;
        tm->cpu[tm->reps] = c - tm->c0;
        tm->spent += tm->wall[tm->reps++];
    }
    tm->t0 = t, tm->c0 = c;
    if (tm->seen <= WARMUP)
        return true;
    return tm->fixed ? tm->reps < tm->fixed
                     : tm->reps < MAX_REPS && (tm->spent < BUDGET_S
                           || (tm->reps < MIN_REPS && tm->spent < 3 * BUDGET_S));
}

static bd_status train_callback(bd_trainer *tr, const bd_train_report *r, void *ud)
{
    (void)tr, (void)r;
    return timing_step(ud) ? BD_OK
                           : bd_fail(BD_E_STATE, "bench_unet: enough steps timed");
}

/* bd's trainer on bumps of the net's size until `tm` has its steps. */
static void run_train(bd_model *m, const net_shape *s, int64_t batch, timing *tm)
{
    bd_data_spec spec = bd_data_defaults();
    bd_dataset *d = NULL;
    spec.size = s->size;
    check(bd_dataset_new(&spec, &d), "bumps");
    bd_train_opts o = bd_train_defaults();
    o.steps = WARMUP + MAX_REPS + 1;
    o.batch = batch;
    o.lr = 3e-4;
    o.every = 1;
    o.seed = SEED;
    timing_step(tm);
    const bd_status st = bd_train(m, d, &o, train_callback, tm);
    if (st != BD_OK && tm->reps == 0)
        check(st, "bd_train");
    bd_dataset_free(d);
}

/* x_t = eps at t = 500: the denoiser's forward with grad off. Returns the
 * tape arena's peak. */
static size_t run_sample(bd_model *m, const net_shape *s, int64_t batch, timing *tm)
{
    bd_tape *tp = need(bd_tape_new());
    bd_tensor *x = need(bd_tensor_new4(batch, CHANNELS, s->size, s->size, false));
    bd_tensor *cond = need(bd_tensor_new4(batch, 2, 0, 0, false));
    bd_tensor *t = need(bd_tensor_new4(batch, 0, 0, 0, false));
    bd_rng rng = bd_rng_make(SEED, 0);
    bd_rng_fill_normal(&rng, x->data, x->numel, 0.0f, 1.0f);
    bd_rng_fill_uniform(&rng, cond->data, cond->numel, 0.0f, (float)s->size);
    bd_tensor_fill(t, 500.0f);
    bd_tape_set_grad(tp, false);
    timing_step(tm);
    do {
        bd_tensor *out;
        bd_tape_reset(tp);
        check(m->forward(m->state, tp, x, t, cond, NULL, &out), "sampling forward");
    } while (timing_step(tm));
    const size_t peak = bd_tape_arena_peak(tp);
    bd_tensor_free(x), bd_tensor_free(cond), bd_tensor_free(t);
    bd_tape_free(tp);
    return peak;
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
                    const net_shape *s, double peak, int fixed_reps)
{
    const bool train = !strcmp(mode, "train");
    const tally r = recipe(width, s);
    const double base = maxrss_mib();
    timing tm = {.fixed = fixed_reps > MAX_REPS ? MAX_REPS : fixed_reps};
    bd_model *m = make_model(width, s);
    check_params(m, width, &r);
    const size_t arena = train ? 0 : run_sample(m, s, batch, &tm);
    if (train)
        run_train(m, s, batch, &tm);
    const double end = now();
    if (fixed_reps)
        fprintf(stderr, "timed steps: %.6f,%.6f\n", tm.start, end);
    const long faults = page_faults() - tm.faults;
    const double sec = median(tm.wall, tm.reps), cpu = median(tm.cpu, tm.reps);
    const double gflops = (train ? 3.0 : 1.0) * r.flops * (double)batch / sec / 1e9;
    printf("RESULT bd %s %lld %lld %.2f %.1f %.0f %.1f\n", mode, (long long)width,
           (long long)batch, (double)batch / sec, gflops, maxrss_mib() - base,
           sec * 1e3);
    printf("  %s width %lld batch %lld size %lld attention %s: %d reps, %.0f%% of"
           " the FMA peak, %.1f CPU ms per step (%.0f img per CPU s, %.2f threads"
           " busy), %.0f page"
           " faults per step", mode, (long long)width, (long long)batch,
           (long long)s->size, s->attention, tm.reps, 100.0 * gflops / peak,
           cpu * 1e3, (double)batch / cpu, cpu / sec, (double)faults / tm.reps);
    if (!train)
        printf("; arena peak %.0f MiB", (double)arena / 1048576.0);
    printf("\n");
    fflush(stdout);
    bd_model_free(m);
    bd_plugins_unload_all();
}

/* ---- the driver ---------------------------------------------------------------- */

typedef struct driver {
    int       threads, reps;
    net_shape net;
} driver;

/* Re-run this program as `--one mode width batch peak` with the same net,
 * wait for it. */
static void spawn_one(const driver *dr, const char *mode, const char *width,
                      const char *batch, double peak)
{
    char peak_s[32], threads_s[16], size_s[16], emb_s[16];
    snprintf(peak_s, sizeof peak_s, "%.3f", peak);
    snprintf(threads_s, sizeof threads_s, "%d", dr->threads);
    snprintf(size_s, sizeof size_s, "%lld", (long long)dr->net.size);
    snprintf(emb_s, sizeof emb_s, "%lld", (long long)dr->net.emb);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "bench_unet", "--threads", threads_s, "--size",
              size_s, "--emb", emb_s, "--attention", dr->net.attention, "--one",
              mode, width, batch, peak_s, (char *)NULL);
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
static void print_flops(const char *widths, const net_shape *s)
{
    char list[64];
    snprintf(list, sizeof list, "%s", widths);
    for (char *w = strtok(list, ","); w; w = strtok(NULL, ",")) {
        const tally r = recipe(atoll(w), s);
        printf("width %s, %lldx%lld, attention %s: %lld parameters, %.3f GFLOP/img"
               " forward, %.3f GFLOP/img training step\n", w, (long long)s->size,
               (long long)s->size, s->attention, (long long)r.params,
               r.flops / 1e9, 3.0 * r.flops / 1e9);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_unet [--threads N] [--widths 32,64] [--batches"
            " 64,128] [NET] | --flops WIDTH [NET] | --ceiling | [--reps K] [NET]"
            " --one MODE WIDTH BATCH PEAK\n  NET: [--size S] [--emb E]"
            " [--attention all|none|down1,...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *widths = "32,64", *batches = "64,128";
    driver dr = {.threads = 2, .net = {32, 256, "all"}};
    bool ceiling_only = false;
    int64_t flops_width = 0;
    for (int i = 1; i < argc; i++) {
        const bool arg = i + 1 < argc;
        if (!strcmp(argv[i], "--flops") && arg) {
            flops_width = atoll(argv[++i]);
        } else if (!strcmp(argv[i], "--reps") && arg) {
            dr.reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--ceiling")) {
            ceiling_only = true;
        } else if (!strcmp(argv[i], "--threads") && arg) {
            dr.threads = atoi(argv[++i]);
            bd_set_num_threads(dr.threads);
        } else if (!strcmp(argv[i], "--size") && arg) {
            dr.net.size = atoll(argv[++i]);
        } else if (!strcmp(argv[i], "--emb") && arg) {
            dr.net.emb = atoll(argv[++i]);
        } else if (!strcmp(argv[i], "--attention") && arg) {
            dr.net.attention = argv[++i];
        } else if (!strcmp(argv[i], "--one") && i + 4 < argc) {
            run_one(argv[i + 1], atoll(argv[i + 2]), atoll(argv[i + 3]), &dr.net,
                    atof(argv[i + 4]), dr.reps);
            return 0;
        } else if (!strcmp(argv[i], "--widths") && arg) {
            widths = argv[++i];
        } else if (!strcmp(argv[i], "--batches") && arg) {
            batches = argv[++i];
        } else {
            return usage();
        }
    }
    if (flops_width) {
        const tally r = recipe(flops_width, &dr.net);
        printf("%.0f %.0f %lld\n", r.flops, 3.0 * r.flops, (long long)r.params);
        return 0;
    }
    openblas_set_num_threads(dr.threads);
    const double peak = ceilings(dr.threads);
    if (ceiling_only)
        return 0;
    print_flops(widths, &dr.net);
    static const char *const modes[] = {"train", "sample"};
    for (int mo = 0; mo < 2; mo++) {
        char wl[64], bl[64];
        snprintf(wl, sizeof wl, "%s", widths);
        for (char *ws, *w = strtok_r(wl, ",", &ws); w; w = strtok_r(NULL, ",", &ws)) {
            snprintf(bl, sizeof bl, "%s", batches);
            for (char *bs, *b = strtok_r(bl, ",", &bs); b; b = strtok_r(NULL, ",", &bs))
                spawn_one(&dr, modes[mo], w, b, peak);
        }
    }
    return 0;
}
