/* .bda archives: every step extracts bit-identical, a late step decodes
 * from its key entry only, EMAs are coded from their weights, smooth
 * tensors from the line through their two previous versions, tensors read
 * straight from the archive, blobs that cannot be re-encoded are kept
 * verbatim, an analysis archive keeps the optimizer state at key steps
 * only and everything else bit-exact, 1.x to 3.x archives still read (one
 * written by the 3.0 writer is committed), and a damaged archive fails
 * with the check's message. */
#include <sys/stat.h>

#include "test_ckpt_util.h"

#define N_STEPS 11
#define KEY_EVERY 4

static char run_dir[600], ckpt_dir[700];

static void step_path(char *buf, size_t len, uint64_t step)
{
    snprintf(buf, len, "%s/step_%llu.bdc", ckpt_dir, (unsigned long long)step);
}

/* Floats the delta coding must carry exactly: zeros of both signs,
 * infinities, NaNs with payloads, denormals, extremes; rotated by step. */
static void fill_special(float *x, int n, int step)
{
    static const uint32_t bits[] = {
        0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00001u,
        0xFFFFFFFFu, 0x00000001u, 0x807FFFFFu, 0x7F7FFFFFu, 0xFF7FFFFFu,
        0x3F800000u, 0xBF800000u, 0x00800000u, 0x7FBFFFFFu,
    };
    const int k = (int)(sizeof bits / sizeof bits[0]);
    for (int i = 0; i < n; i++)
        memcpy(&x[i], &bits[(i + step * (i % 3)) % k], 4);
}

/* A short "training history": weights take shrinking random steps, their
 * EMA appears half way, one tensor changes shape, a few files are stored
 * raw, special floats have an EMA of special floats, and in "net.decay"
 * every other weight has no gradient (weight decay alone moves it). */
static void write_history(void)
{
    int64_t wd[2] = {96, 40}, vd[1] = {3000};
    bd_tensor *w = bd_tensor_new(2, wd, false), *v = bd_tensor_new(1, vd, false);
    bd_tensor *ema = bd_tensor_new(2, wd, false), *decay = bd_tensor_new(1, vd, false);
    fill_smooth(w->data, w->numel, 0.0);
    fill_smooth(decay->data, decay->numel, 0.7);
    for (int s = 0; s < N_STEPS; s++) {
        for (int64_t i = 0; i < w->numel; i++)
            w->data[i] += (float)(1e-3 / (1 + s) * (harness_uniform() - 0.5));
        for (int64_t i = 0; i < decay->numel; i++)
            decay->data[i] = i % 2 ? decay->data[i] * 0.998f
                           : decay->data[i] + (float)(1e-3 * (harness_uniform() - 0.5));
        for (int64_t i = 0; i < w->numel; i++)
            ema->data[i] = s <= N_STEPS / 2 ? w->data[i]
                         : 0.8f * ema->data[i] + 0.2f * w->data[i];
        for (int64_t i = 0; i < v->numel; i++)
            v->data[i] = (float)(0.9 * v->data[i] + 0.1 * harness_uniform());
        bd_ckpt *ck = bd_ckpt_new();
        CHECK_OK(bd_ckpt_set_u64(ck, "bd.step", (uint64_t)(100 * s)));
        CHECK_OK(bd_ckpt_set_str(ck, "bd.arch", "mlp"));
        CHECK_OK(bd_ckpt_add_tensor(ck, "net.w", w));
        CHECK_OK(bd_ckpt_add_tensor(ck, "net.decay", decay));
        CHECK_OK(bd_ckpt_add_tensor(ck, "optim.v.net.w", v));
        int64_t grow[1] = {10 + s};
        float g[32] = {(float)s};
        CHECK_OK(bd_ckpt_add_array(ck, "net.grow", BD_CKPT_F32, 1, grow, g));
        if (s >= N_STEPS / 2)
            CHECK_OK(bd_ckpt_add_tensor(ck, "ema.net.w", ema));
        int64_t sd[1] = {1500};
        float special[1500];
        fill_special(special, 1500, s);
        CHECK_OK(bd_ckpt_add_array(ck, "special", BD_CKPT_F32, 1, sd, special));
        fill_special(special, 1500, s + 1);
        CHECK_OK(bd_ckpt_add_array(ck, "ema.special", BD_CKPT_F32, 1, sd, special));
        uint64_t rng[4] = {1, 2, 3, (uint64_t)s};
        CHECK_OK(bd_ckpt_add_bytes(ck, "rng.state", rng, sizeof rng));
        bd_ckpt_save_opts opts = {.level = s % 5 == 2 ? 0 : 1 + s % 3};
        char path[800];
        step_path(path, sizeof path, (uint64_t)(100 * s));
        CHECK_OK(bd_ckpt_save(ck, path, &opts));
        bd_ckpt_free(ck);
    }
    bd_tensor_free(w);
    bd_tensor_free(v);
    bd_tensor_free(ema);
    bd_tensor_free(decay);
}

static void setup(void)
{
    char *tmp = tmp_mkdir();
    snprintf(run_dir, sizeof run_dir, "%s", tmp);
    free(tmp);
    snprintf(ckpt_dir, sizeof ckpt_dir, "%s/ckpt", run_dir);
    mkdir(ckpt_dir, 0755);
    write_history();
}

static bool extract_matches(bd_archive *a, uint64_t step)
{
    char path[800];
    step_path(path, sizeof path, step);
    uint8_t *bytes = NULL;
    size_t len = 0;
    bd_status s = bd_archive_extract_mem(a, step, &bytes, &len);
    if (s != BD_OK)
        printf("   extract %llu: %s\n", (unsigned long long)step, bd_last_error());
    bool same = s == BD_OK && file_equals(path, bytes, len);
    free(bytes);
    return same;
}

/* Whether a coding byte is this coding (split or not), or any split one
 * for ANY_SPLIT. */
#define ANY_SPLIT -1
static bool is_coding(uint8_t byte, int coding)
{
    return coding == ANY_SPLIT ? (byte & BDA_SPLIT) != 0
                               : (int)(byte & ~BDA_SPLIT) == coding;
}

/* How many payloads have this coding: of the entries' last tensors (which
 * is "special") when last_only, else of every tensor. */
static int count_coding(const char *bda, int coding, bool last_only)
{
    uint8_t *b;
    size_t len;
    if (bd_read_file(bda, &b, &len) != BD_OK)
        return -1;
    const uint8_t *p = b + bd_le64(b + 32);
    int n = 0;
    for (uint64_t e = 0; e < bd_le64(b + 24); e++) {
        uint64_t tensors = bd_le64(p + 40);
        p += 48 + 9 * tensors;
        for (uint64_t t = last_only ? tensors - 1 : 0; t < tensors; t++)
            n += is_coding(p[-9 * (int64_t)(tensors - t)], coding);
    }
    free(b);
    return n;
}

/* Where the payload of tensor t of entry e starts in an archive, and the
 * byte holding its coding in the index. */
static uint64_t payload_at(uint8_t *b, uint64_t e, uint64_t t, uint8_t **coding)
{
    uint8_t *p = b + bd_le64(b + 32);
    uint64_t at = 64;
    for (uint64_t i = 0; i < e; i++) {
        at += bd_le64(p + 32);
        for (uint64_t j = 0; j < bd_le64(p + 40); j++)
            at += bd_le64(p + 48 + 9 * j + 1);
        p += 48 + 9 * bd_le64(p + 40);
    }
    at += bd_le64(p + 32);
    for (uint64_t j = 0; j < t; j++)
        at += bd_le64(p + 48 + 9 * j + 1);
    *coding = p + 48 + 9 * t;
    return at;
}

/* The last (or first) payload of this coding: its entry and tensor; false
 * if none. */
static bool find_coded(const uint8_t *b, int coding, bool first,
                       uint64_t *entry, uint64_t *tensor)
{
    const uint8_t *p = b + bd_le64(b + 32);
    bool found = false;
    for (uint64_t e = 0; e < bd_le64(b + 24); e++) {
        for (uint64_t t = 0; t < bd_le64(p + 40); t++)
            if (is_coding(p[48 + 9 * t], coding) && !(first && found))
                *entry = e, *tensor = t, found = true;
        p += 48 + 9 * bd_le64(p + 40);
    }
    return found;
}

static void count_verified(void *ctx, bd_archive_entry e, const char *failure)
{
    (void)e;
    *(int *)ctx += failure == NULL;
}

/* How many entries of the archive at path verify (-1 if it does not open). */
static int verified(const char *path)
{
    bd_archive *a = NULL;
    int good = 0;
    size_t bad = 0;
    if (bd_archive_open(path, &a) != BD_OK)
        return -1;
    CHECK_OK(bd_archive_verify(a, count_verified, &good, &bad));
    bd_archive_close(a);
    return good;
}

static void test_round_trip(void)
{
    char bda[800];
    snprintf(bda, sizeof bda, "%s/run.bda", run_dir);
    bd_archive_opts opts = {.level = 3, .key_every = KEY_EVERY};
    CHECK_OK(bd_archive_create(run_dir, bda, &opts));
    CHECK(count_coding(bda, BDA_DELTA, true) > 0, "special floats were delta"
          " coded %d times", count_coding(bda, BDA_DELTA, true));
    CHECK(count_coding(bda, BDA_EMA, false) > 0, "EMAs were coded from their"
          " weights %d times", count_coding(bda, BDA_EMA, false));
    CHECK(count_coding(bda, BDA_TREND, false) > 0, "smooth tensors were coded"
          " from their trend %d times", count_coding(bda, BDA_TREND, false));
    CHECK(count_coding(bda, BDA_EMA_KEY, false) > 0, "EMAs of key entries were"
          " coded from their weights %d times", count_coding(bda, BDA_EMA_KEY, false));
    CHECK(count_coding(bda, ANY_SPLIT, false) > 0, "residuals were split %d"
          " times", count_coding(bda, ANY_SPLIT, false));
    printf("   %d delta, %d trend, %d EMA and %d key-ema payloads, %d of them"
           " split\n", count_coding(bda, BDA_DELTA, false),
           count_coding(bda, BDA_TREND, false), count_coding(bda, BDA_EMA, false),
           count_coding(bda, BDA_EMA_KEY, false), count_coding(bda, ANY_SPLIT, false));
    bd_archive *a = NULL;
    CHECK_OK(bd_archive_open(bda, &a));
    if (!a)
        return;
    CHECK(bd_archive_count(a) == N_STEPS, "%zu entries", bd_archive_count(a));
    CHECK(verified(bda) == N_STEPS, "every entry verifies (%d)", verified(bda));
    uint64_t originals = 0, stored = 0;
    for (size_t i = 0; i < bd_archive_count(a); i++) {
        bd_archive_entry e = bd_archive_entry_at(a, i);
        CHECK(e.step == 100 * i && e.key == (i % KEY_EVERY == 0),
              "entry %zu: step %llu key %d", i, (unsigned long long)e.step, e.key);
        CHECK(extract_matches(a, e.step), "step %llu extracts bit-identical",
              (unsigned long long)e.step);
        originals += e.file_size;
        stored += e.stored_size;
    }
    printf("   %llu bytes of checkpoints in %llu bytes of payloads\n",
           (unsigned long long)originals, (unsigned long long)stored);
    uint8_t *bytes;
    size_t len;
    CHECK_FAILS(bd_archive_extract_mem(a, 150, &bytes, &len), BD_E_ARG,
                "no step 150 (it holds 11 steps from 0 to 1000)");
    bd_archive_close(a);

    char out[800], orig[800];
    snprintf(out, sizeof out, "%s/out.bdc", run_dir);
    step_path(orig, sizeof orig, 700);
    CHECK_OK(bd_archive_extract(bda, 700, out));
    uint8_t *want;
    CHECK_OK(bd_read_file(orig, &want, &len));
    CHECK(file_equals(out, want, len), "extract writes the original file");
    free(want);
    unlink(out);

    bd_ckpt *ck = NULL;
    bd_tensor *t = NULL;
    CHECK_OK(bd_ckpt_load(orig, &ck));
    for (int i = 0; i < 3; i++) {
        const char *name = (const char *[]){"ema.net.w", "net.w", "ema.special"}[i];
        CHECK_OK(bd_archive_read_tensor(bda, 700, name, &t));
        const bd_ckpt_tensor *w = ck ? bd_ckpt_tensor_find(ck, name) : NULL;
        CHECK(t && w && memcmp(t->data, w->data, w->nbytes) == 0,
              "read_tensor gives the step's '%s'", name);
        bd_tensor_free(t);
    }
    bd_ckpt_free(ck);
    CHECK_FAILS(bd_archive_read_tensor(bda, 100, "ema.net.w", &t), BD_E_ARG,
                "step 100 has no tensor 'ema.net.w'");
    CHECK_FAILS(bd_archive_read_tensor(bda, 100, "rng.state", &t), BD_E_ARG,
                "is u8, expected f32");
}

/* Every tensor but the optimizer's, and every key but bd.kind, of the
 * original checkpoint are in the analysis checkpoint, bit for bit. */
static bool same_but_optimizer(const bd_ckpt *orig, const bd_ckpt *an)
{
    size_t kept = 0;
    for (size_t i = 0; i < bd_ckpt_tensor_count(orig); i++) {
        const bd_ckpt_tensor *t = bd_ckpt_tensor_at(orig, i);
        const bd_ckpt_tensor *u = bd_ckpt_tensor_find(an, t->name);
        if (strncmp(t->name, "optim.", 6) == 0) {
            if (u)
                return false;
            continue;
        }
        kept++;
        if (!u || u->dtype != t->dtype || u->nbytes != t->nbytes
            || memcmp(u->data, t->data, t->nbytes) != 0)
            return false;
    }
    bool keys = bd_ckpt_kv_count(an) == bd_ckpt_kv_count(orig) + 1;
    for (size_t i = 0; keys && i < bd_ckpt_kv_count(orig); i++) {
        const bd_ckpt_kv *kv = bd_ckpt_kv_at(orig, i);
        const bd_ckpt_kv *u = bd_ckpt_kv_find(an, kv->key);
        keys = u && u->type == kv->type && u->n == kv->n
            && (kv->type != BD_CKPT_STR ? u->v.u64 == kv->v.u64
                : strcmp(u->v.str, kv->v.str) == 0);
    }
    return keys && kept == bd_ckpt_tensor_count(an);
}

/* optimizer_at_keys: key steps extract bit-identical; the others as
 * analysis checkpoints holding the rest bit for bit; read_tensor names the
 * key step that has the optimizer state. */
static void test_analysis_archive(void)
{
    char bda[800], full[800];
    snprintf(bda, sizeof bda, "%s/analysis.bda", run_dir);
    snprintf(full, sizeof full, "%s/full.bda", run_dir);
    bd_archive_opts opts = {.level = 3, .key_every = KEY_EVERY};
    CHECK_OK(bd_archive_create(run_dir, full, &opts));
    opts.optimizer_at_keys = true;
    CHECK_OK(bd_archive_create(run_dir, bda, &opts));
    bd_archive *a = NULL;
    CHECK_OK(bd_archive_open(bda, &a));
    for (size_t i = 0; a && i < bd_archive_count(a); i++) {
        bd_archive_entry e = bd_archive_entry_at(a, i);
        CHECK(e.analysis == !e.key, "entry %zu: key %d analysis %d", i, e.key,
              e.analysis);
        if (e.key) {
            CHECK(extract_matches(a, e.step), "key step %llu extracts"
                  " bit-identical", (unsigned long long)e.step);
            continue;
        }
        char orig[800];
        step_path(orig, sizeof orig, e.step);
        uint8_t *bytes = NULL;
        size_t len;
        bd_ckpt *want = NULL, *got = NULL;
        CHECK_OK(bd_archive_extract_mem(a, e.step, &bytes, &len));
        CHECK_OK(bd_ckpt_load(orig, &want));
        CHECK_OK(bd_ckpt_load_mem(bytes, len, "extracted", &got));
        CHECK(got && want && bd_ckpt_is_analysis(got) && !bd_ckpt_is_analysis(want)
              && same_but_optimizer(want, got), "step %llu: an analysis"
              " checkpoint with everything but the optimizer state",
              (unsigned long long)e.step);
        bd_ckpt_free(want);
        bd_ckpt_free(got);
        free(bytes);
    }
    bd_archive_close(a);
    struct stat sa, sf;
    CHECK(stat(bda, &sa) == 0 && stat(full, &sf) == 0 && sa.st_size < sf.st_size,
          "smaller than the full archive");
    printf("   analysis archive %lld bytes, full %lld\n", (long long)sa.st_size,
           (long long)sf.st_size);
    bd_tensor *t = NULL;
    CHECK_OK(bd_archive_read_tensor(bda, 700, "ema.net.w", &t));
    bd_tensor_free(t);
    CHECK_OK(bd_archive_read_tensor(bda, 800, "optim.v.net.w", &t));
    bd_tensor_free(t);
    CHECK_FAILS(bd_archive_read_tensor(bda, 700, "optim.v.net.w", &t), BD_E_ARG,
                "step 700 has no tensor 'optim.v.net.w': the archive keeps the"
                " optimizer state at its key steps only (the last before it:"
                " step 400)");
    unlink(full);
}

/* Damage the first entry's payloads: steps after the next key entry still
 * extract (they never read it), the ones before do not. */
static void test_late_step_skips_early_entries(void)
{
    char bda[800];
    snprintf(bda, sizeof bda, "%s/run.bda", run_dir);
    uint8_t *bytes;
    size_t len;
    CHECK_OK(bd_read_file(bda, &bytes, &len));
    for (size_t i = 64; i < 64 + 2000; i++)
        bytes[i] ^= 0x5A;
    char broken[800];
    snprintf(broken, sizeof broken, "%s/broken.bda", run_dir);
    CHECK_OK(bd_write_file_atomic(broken, bytes, len));
    free(bytes);
    bd_archive *a = NULL;
    CHECK_OK(bd_archive_open(broken, &a));
    if (!a)
        return;
    CHECK(extract_matches(a, 100 * (N_STEPS - 1)), "last step extracts");
    CHECK(extract_matches(a, 100 * KEY_EVERY), "first step after a key extracts");
    CHECK_FAILS(bd_archive_extract_mem(a, 100, &bytes, &len), BD_E_FORMAT,
                "step 0: meta: not a zstd frame");
    bd_archive_close(a);
    unlink(broken);
}

/* A blob zstd cannot reproduce (its recorded level is not the one used) is
 * archived verbatim and still extracts bit-identical. */
static void test_verbatim_blob(void)
{
    char dir[800], sub[900], bda[900], path[1000];
    snprintf(dir, sizeof dir, "%s/foreign", run_dir);
    snprintf(sub, sizeof sub, "%s/ckpt", dir);
    mkdir(dir, 0755);
    mkdir(sub, 0755);
    bd_ckpt *ck = sample_ckpt(0.5);
    uint8_t *bytes;
    size_t len;
    bd_ckpt_save_opts opts = {.level = 3};
    CHECK_OK(bd_ckpt_encode(ck, &opts, &bytes, &len));
    bd_ckpt *back = NULL;
    CHECK_OK(bd_ckpt_load_mem(bytes, len, "x", &back));
    const bd_ckpt_tensor *w = bd_ckpt_tensor_find(back, "down1.conv1.weight");
    CHECK(w->stored.codec == 1 && w->stored.level == 3, "weight is zstd level 3");
    /* Its record's level byte: find the record by its name in the index. */
    const char *name = "down1.conv1.weight";
    uint8_t *rec = find_bytes(bytes + 64, len - 64, name, strlen(name));
    rec[strlen(name) + 2 + 16 + 2] = 7;
    bd_put_le32(bytes + 56, bdc_meta_crc(bytes, 64 * ((bd_le64(bytes + 40) + 63) / 64)));
    snprintf(path, sizeof path, "%s/step_5.bdc", sub);
    CHECK_OK(bd_write_file_atomic(path, bytes, len));
    CHECK_OK(bd_ckpt_verify(path));
    snprintf(path, sizeof path, "%s/step_6.bdc", sub);
    CHECK_OK(bd_ckpt_save(ck, path, &opts));
    snprintf(bda, sizeof bda, "%s/f.bda", dir);
    CHECK_OK(bd_archive_create(dir, bda, NULL));
    uint8_t *arch;
    size_t arch_len;
    CHECK_OK(bd_read_file(bda, &arch, &arch_len));
    /* Entry 0's second tensor (the weight, in name order) is verbatim (2),
     * entry 1's is a delta (1). */
    const uint8_t *index = arch + bd_le64(arch + 32);
    uint64_t n_tensors = bd_le64(index + 40);
    CHECK(index[48 + 9] == 2, "weight archived verbatim (coding %d)", index[57]);
    CHECK(is_coding(index[48 + 9 * n_tensors + 48 + 9], BDA_DELTA),
          "next version is a delta");
    free(arch);
    bd_archive *a = NULL;
    CHECK_OK(bd_archive_open(bda, &a));
    uint8_t *got = NULL;
    size_t got_len = 0;
    CHECK_OK(bd_archive_extract_mem(a, 5, &got, &got_len));
    CHECK(got_len == len && memcmp(got, bytes, len) == 0,
          "verbatim blob extracts bit-identical");
    free(got);
    bd_archive_close(a);
    free(bytes);
    bd_ckpt_free(back);
    bd_ckpt_free(ck);
}

/* The trend residuals too. */
static void test_trend_prediction_exact(void)
{
    enum { N = 700 };
    float w1[N], w2[N], x[N];
    fill_special(w1, N, 1);
    fill_special(w2, N, 2);
    fill_special(x, N, 3);
    for (int i = 0; i < N; i += 3)
        w1[i] = 0.5f + 0.001f * (float)i, w2[i] = 0.501f + 0.001f * (float)i,
        x[i] = 2 * w1[i] - w2[i];
    bda_trend_refs r = {.w1 = w1, .w2 = w2};
    const float coefs[5] = {0, 1, -0.5f, 1e30f, NAN};
    uint8_t coded[4 * N];
    for (int k = 0; k < 6; k++) {
        float c = k < 5 ? coefs[k] : bda_trend_fit(x, &r, N);
        bda_trend_encode(x, &r, c, coded, N);
        bda_trend_decode(coded, &r, c, N);
        CHECK(memcmp(coded, x, sizeof x) == 0, "coefficient %g: every float"
              " back bit for bit", c);
    }
}

/* On weights of which half move by weight decay alone (w = 0.998 w1) and
 * half at random, the fitted line predicts the first half within a few
 * units of the last place, and its residuals code smaller than deltas. */
static void test_trend_fit(void)
{
    enum { N = 4000 };
    float w2[N], w1[N], x[N];
    fill_smooth(w2, N, 0.2);
    for (int i = 0; i < N; i++) {
        bool decay = i % 2;
        w1[i] = decay ? w2[i] * 0.998f : w2[i] + (float)(1e-3 * (harness_uniform() - 0.5));
        x[i] = decay ? w1[i] * 0.998f : w1[i] + (float)(1e-3 * (harness_uniform() - 0.5));
    }
    bda_trend_refs r = {.w1 = w1, .w2 = w2};
    float c = bda_trend_fit(x, &r, N);
    uint32_t trend[N], delta[N];
    bda_trend_encode(x, &r, c, (uint8_t *)trend, N);
    bda_delta_encode(BD_CKPT_F32, (const uint8_t *)x, (const uint8_t *)w1,
                     (uint8_t *)delta, 4 * N);
    int close = 0;
    double bits_trend = 0, bits_delta = 0;
    for (int i = 0; i < N; i++) {
        close += i % 2 && trend[i] <= 16;  /* zigzag: within 8 units */
        bits_trend += log2(1.0 + trend[i]), bits_delta += log2(1.0 + delta[i]);
    }
    CHECK(fabsf(c - 0.998f) < 0.01f, "c = %g, the decay's ratio 0.998", c);
    CHECK(close == N / 2, "%d of %d decaying weights predicted within 8 units"
          " of the last place", close, N / 2);
    CHECK(bits_trend < 0.8 * bits_delta, "residual bits %.0f against %.0f for"
          " deltas", bits_trend, bits_delta);
}

/* The EMA residuals give back every float exactly, special ones included,
 * whatever the coefficients: predictions that overflow or are NaN fall back
 * to the previous EMA. */
static void test_ema_prediction_exact(void)
{
    enum { N = 700 };
    float e[N], w[N], w_prev[N], ema[N], c[2];
    fill_special(e, N, 1);
    fill_special(w, N, 2);
    fill_smooth(w_prev, N, 0.3);
    fill_special(ema, N, 3);
    for (int i = 0; i < N; i += 5)
        ema[i] = 0.5f * w[i] + 0.5f * e[i];
    bda_ema_refs r = {.ema_prev = e, .w = w, .w_prev = w_prev};
    const float coefs[4][2] = {{0, 0}, {0.1f, 0.05f}, {1e30f, -1e30f}, {NAN, 1}};
    uint8_t coded[4 * N];
    for (int k = 0; k < 5; k++) {
        if (k < 4)
            memcpy(c, coefs[k], sizeof c);
        else
            bda_ema_fit(ema, &r, N, c);
        bda_ema_encode(ema, &r, c, coded, N);
        bda_ema_decode(coded, &r, c, N);
        CHECK(memcmp(coded, ema, sizeof ema) == 0, "coefficients (%g, %g):"
              " every float back bit for bit", c[0], c[1]);
    }
}

/* The key-ema residuals give back every float exactly, special ones
 * included, whatever the coefficient. */
static void test_ema_key_prediction_exact(void)
{
    enum { N = 700 };
    float w[N], ema[N];
    fill_special(w, N, 2);
    fill_special(ema, N, 3);
    for (int i = 0; i < N; i += 4)
        w[i] = 0.25f + 0.001f * (float)i, ema[i] = 1.002f * w[i];
    const float coefs[5] = {0, 0.002f, 1e30f, NAN, -1};
    uint8_t coded[4 * N];
    for (int k = 0; k < 6; k++) {
        float c = k < 5 ? coefs[k] : bda_ema_key_fit(ema, w, N);
        bda_ema_key_encode(ema, w, c, coded, N);
        bda_ema_key_decode(coded, w, c, N);
        CHECK(memcmp(coded, ema, sizeof ema) == 0, "coefficient %g: every float"
              " back bit for bit", c);
    }
}

/* The EMA of weights that decay geometrically is a constant multiple of
 * them: the fitted w + c w predicts it within a few units in the last
 * place, though the other half (off by 0.01 to 0.05 either way) pulls a
 * least-squares fit off. */
static void test_ema_key_fit(void)
{
    enum { N = 4000 };
    float w[N], ema[N];
    fill_smooth(w, N, 0.4);
    for (int i = 0; i < N; i++)
        ema[i] = i % 2 ? w[i] * 1.003f
               : w[i] + (i % 4 ? 1 : -1) * (float)(0.01 + 0.04 * harness_uniform());
    float c = bda_ema_key_fit(ema, w, N);
    uint32_t z[N];
    bda_ema_key_encode(ema, w, c, (uint8_t *)z, N);
    int close = 0;
    for (int i = 1; i < N; i += 2)
        close += z[i] <= 16;
    CHECK(fabsf(c - 0.003f) < 1e-4f, "c = %g, the ratio 1.003 - 1", c);
    CHECK(close == N / 2, "%d of %d proportional EMAs predicted within 8 units"
          " of the last place", close, N / 2);
}

/* Split residuals give back every u32 (small ones, powers of two and the
 * numbers below them, the largest, random ones). */
static void test_split_exact(void)
{
    enum { N = 300 };
    uint32_t z[N], back[N];
    for (int i = 0; i < N; i++)
        z[i] = i < 32 ? 1u << i : i < 64 ? (1u << (i - 32)) - 1
             : i < 96 ? ~0u >> (i - 64) : (uint32_t)(harness_uniform() * 4294967295.0);
    uint8_t *p = NULL;
    size_t len = 0;
    CHECK_OK(bda_split_encode((const uint8_t *)z, N, 3, &p, &len));
    CHECK_OK(bda_split_decode(p, len, N, (uint8_t *)back, "split"));
    CHECK(memcmp(z, back, sizeof z) == 0, "every residual back bit for bit");
    free(p);
}

/* A split payload's checks, each with its message: too short for the
 * class frame's size, a class frame past the payload, a class out of
 * range, low bits of the wrong size, padding bits set. */
static void test_corrupt_split(void)
{
    uint32_t z[3] = {5, 0, 1};  /* classes 4, 0, 1: one raw bit, 1 */
    uint8_t *p = NULL, back[12];
    size_t len = 0;
    CHECK_OK(bda_split_encode((const uint8_t *)z, 3, 3, &p, &len));
    if (!p)
        return;
    CHECK_FAILS(bda_split_decode(p, 5, 3, back, "s"), BD_E_FORMAT, "s: split"
                " payload of 5 bytes is shorter than its 8-byte class frame size");
    CHECK_FAILS(bda_split_decode(p, len - 1, 3, back, "s"), BD_E_FORMAT,
                "s: low bits of 0 bytes (expected 1: the classes call for 1 bits)");
    p[len - 1] |= 0x80;
    CHECK_FAILS(bda_split_decode(p, len, 3, back, "s"), BD_E_FORMAT, "s: padding"
                " after the low bits is not zero (last byte 0x81, 1 bits used)");
    p[len - 1] = 0x01;
    uint64_t frame_len = bd_le64(p);
    p[0] = (uint8_t)(len - 7);
    CHECK_FAILS(bda_split_decode(p, len, 3, back, "s"), BD_E_FORMAT, "s: class"
                " frame of");
    CHECK(strstr(bd_last_error(), "runs past the payload"), "%s", bd_last_error());
    p[0] = (uint8_t)frame_len;
    CHECK_FAILS(bda_split_decode(p, len, 4, back, "s"), BD_E_FORMAT,
                "s: zstd frame content size mismatch");
    free(p);
    uint8_t classes[2] = {1, 64}, *frame = NULL;
    CHECK_OK(bd_zstd_compress(classes, 2, 3, NULL, 0, &frame, &frame_len));
    p = calloc(8 + frame_len, 1);
    p[0] = (uint8_t)frame_len;
    memcpy(p + 8, frame, frame_len);
    CHECK_FAILS(bda_split_decode(p, 8 + frame_len, 2, back, "s"), BD_E_FORMAT,
                "s: residual class 64 of element 1 out of range (expected 0 to 63)");
    free(frame);
    free(p);
}

static void test_write_errors(void)
{
    char bda[800], dir[800], path[900];
    snprintf(bda, sizeof bda, "%s/x.bda", run_dir);
    snprintf(dir, sizeof dir, "%s/empty", run_dir);
    mkdir(dir, 0755);
    CHECK_FAILS(bd_archive_create(dir, bda, NULL), BD_E_IO, "cannot list");
    snprintf(path, sizeof path, "%s/ckpt", dir);
    mkdir(path, 0755);
    CHECK_FAILS(bd_archive_create(dir, bda, NULL), BD_E_ARG,
                "no checkpoints named step_<N>.bdc");
    char a[900], b[900];
    step_path(a, sizeof a, 100);
    step_path(b, sizeof b, 0);
    const char *paths[2] = {a, b};
    uint64_t steps[2] = {100, 0};
    CHECK_FAILS(bd_archive_write(bda, paths, steps, 2, NULL), BD_E_ARG,
                "step 0 of");
    bd_archive_opts bad = {.level = 0, .key_every = 1};
    CHECK_FAILS(bd_archive_write(bda, paths, steps, 1, &bad), BD_E_ARG,
                "level 0, expected 1 to 19");
    bad = (bd_archive_opts){.level = 3, .key_every = 0};
    CHECK_FAILS(bd_archive_write(bda, paths, steps, 1, &bad), BD_E_ARG,
                "key_every 0");
    snprintf(path, sizeof path, "%s/ckpt/step_7.bdc", dir);
    CHECK_OK(bd_write_file_atomic(path, "not a checkpoint", 16));
    CHECK_FAILS(bd_archive_create(dir, bda, NULL), BD_E_FORMAT,
                "file truncated inside the header");
    struct stat st;
    CHECK(stat(bda, &st) != 0, "a failed archive leaves no file");
    snprintf(path, sizeof path, "%s/ckpt/step_07.bdc", dir);
    CHECK_OK(bd_write_file_atomic(path, "x", 1));
    CHECK_FAILS(bd_archive_create(dir, bda, NULL), BD_E_ARG,
                "two checkpoints of step 7");
}

/* ---- corruption of the archive itself ------------------------------------ */

static uint8_t *archive_bytes(size_t *len)
{
    char bda[800];
    snprintf(bda, sizeof bda, "%s/run.bda", run_dir);
    uint8_t *bytes = NULL;
    CHECK_OK(bd_read_file(bda, &bytes, len));
    return bytes;
}

/* Write bytes as an archive, recomputing the index CRC when reseal. */
static bd_status open_step(uint8_t *bytes, size_t len, bool reseal,
                           uint64_t step)
{
    if (reseal && len >= 64) {
        uint64_t off = bd_le64(bytes + 32);
        memset(bytes + 56, 0, 4);
        uint32_t crc = bd_crc32c(0, bytes, 64);
        bd_put_le32(bytes + 56, bd_crc32c(crc, bytes + off, len - off));
    }
    char path[800];
    snprintf(path, sizeof path, "%s/patched.bda", run_dir);
    if (bd_write_file_atomic(path, bytes, len) != BD_OK)
        return BD_E_IO;
    bd_archive *a = NULL;
    bd_status s = bd_archive_open(path, &a);
    if (s == BD_OK) {
        uint8_t *out = NULL;
        size_t n;
        s = bd_archive_extract_mem(a, step, &out, &n);
        free(out);
    }
    bd_archive_close(a);
    return s;
}

/* Open the patched archive and extract its last step. */
static bd_status open_patched(uint8_t *bytes, size_t len, bool reseal)
{
    return open_step(bytes, len, reseal, 100 * (N_STEPS - 1));
}

static void add_le64(uint8_t *p, int64_t delta)
{
    uint64_t v = bd_le64(p) + (uint64_t)delta;
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* c: b (len bytes) with the payload of tensor t of entry e cut to n bytes,
 * the rest counted in the next tensor's, so that the sums still add up. */
static void shrink_payload(const uint8_t *b, uint8_t *c, size_t len, uint64_t e,
                           uint64_t t, uint64_t n)
{
    uint8_t *coding;
    memcpy(c, b, len);
    payload_at(c, e, t, &coding);
    uint64_t stored = bd_le64(coding + 1);
    add_le64(coding + 1, -(int64_t)(stored - n));
    add_le64(coding + 10, (int64_t)(stored - n));
}

/* The EMA payload of the last step ("ema.net.w" is its first tensor). */
static void test_corrupt_ema(const uint8_t *b, uint8_t *c, size_t len)
{
    uint8_t *coding;
    memcpy(c, b, len);
    uint64_t at = payload_at(c, N_STEPS - 1, 0, &coding);
    CHECK(is_coding(*coding, BDA_EMA), "the last EMA is coded from its"
          " weights (%d)", *coding);
    c[at + 1] ^= 0x40;  /* a coefficient */
    CHECK_FAILS(open_patched(c, len, false), BD_E_FORMAT,
                "step 1000: tensor 'ema.net.w': crc32c mismatch of the raw bytes");
    memcpy(c, b, len);
    /* the descriptor of its (residuals' or classes') frame */
    c[at + BDA_EMA_COEFS + (*coding & BDA_SPLIT ? 8 : 0) + 4] ^= 0x01;
    CHECK_FAILS(open_patched(c, len, false), BD_E_FORMAT,
                "step 1000: tensor 'ema.net.w': zstd frame");
    /* Coding 3 where the previous step has no EMA (step 500: its first). */
    memcpy(c, b, len);
    payload_at(c, N_STEPS / 2, 0, &coding);
    *coding = BDA_EMA;
    CHECK_FAILS(open_step(c, len, true, 100 * (N_STEPS / 2)), BD_E_FORMAT,
                "step 500: tensor 'ema.net.w': ema coding without its references");
    /* An EMA payload too short for its coefficients. */
    shrink_payload(b, c, len, N_STEPS - 1, 0, 5);
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT,
                "entry 10: tensor 0: ema payload of 5 bytes is shorter than its"
                " 8 bytes of coefficients");
    /* The same archive read as 1.x: no EMA (or trend, key-ema, split)
     * coding there (the messages of each version: test_old_codings). */
    memcpy(c, b, len);
    c[4] = 1;
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT, "of a 1.x archive)");
}

/* A trend payload (the last one): a flipped coefficient, one in the entry
 * after a key entry (the line would need an entry before the key), one too
 * short for its coefficient, and the archive read as 3.x. */
static void test_corrupt_trend(const uint8_t *b, uint8_t *c, size_t len)
{
    uint64_t e = 0, t = 0;
    uint8_t *coding;
    CHECK(find_coded(b, BDA_TREND, false, &e, &t), "the archive has trend payloads");
    memcpy(c, b, len);
    uint64_t at = payload_at(c, e, t, &coding);
    c[at + 2] ^= 0x40;
    char want[200];
    snprintf(want, sizeof want, "step %llu: tensor 'net.decay': crc32c mismatch"
             " of the raw bytes", (unsigned long long)(100 * e));
    CHECK_FAILS(open_step(c, len, false, 100 * e), BD_E_FORMAT, want);
    memcpy(c, b, len);
    payload_at(c, 1, 1, &coding);  /* step 100's "net.decay", after key 0 */
    *coding = BDA_TREND;
    CHECK_FAILS(open_step(c, len, true, 100), BD_E_FORMAT, "step 100: tensor"
                " 'net.decay': trend coding without its references");
    char patched[800];
    snprintf(patched, sizeof patched, "%s/patched.bda", run_dir);
    CHECK(verified(patched) == N_STEPS - KEY_EVERY + 1, "verify: %d entries"
          " good, the key entry 0 and the steps from key entry 4 on",
          verified(patched));
    shrink_payload(b, c, len, e, t, 3);
    snprintf(want, sizeof want, "entry %llu: tensor %llu: trend payload of 3"
             " bytes is shorter than its 4 bytes of coefficients",
             (unsigned long long)e, (unsigned long long)t);
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT, want);
    memcpy(c, b, len);
    c[4] = 3;
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT, "of a 3.x archive)");
}

static void test_corrupt_archive(void)
{
    size_t len;
    uint8_t *b = archive_bytes(&len), *c = malloc(len);
    uint64_t index_offset = bd_le64(b + 32);
#define FRESH() memcpy(c, b, len)
    FRESH();
    CHECK_FAILS(open_patched(c, 40, false), BD_E_FORMAT,
                "file truncated inside the header");
    FRESH(); c[0] = 'X';
    CHECK_FAILS(open_patched(c, len, false), BD_E_FORMAT, "bad magic");
    FRESH(); c[4] = 6;
    CHECK_FAILS(open_patched(c, len, false), BD_E_FORMAT,
                "format version 6.0 is newer than this reader (reads 1.x to 5.x)");
    FRESH();
    CHECK_FAILS(open_patched(c, len - 1, false), BD_E_FORMAT, "file size mismatch");
    FRESH(); c[47] = 0x40;
    CHECK_FAILS(open_patched(c, len, false), BD_E_FORMAT, "index_size above the cap");
    FRESH(); c[31] = 0x10;
    CHECK_FAILS(open_patched(c, len, false), BD_E_FORMAT, "n_entries too large");
    FRESH(); c[index_offset + 3] ^= 1;
    CHECK_FAILS(open_patched(c, len, false), BD_E_FORMAT, "index crc32c mismatch");
    FRESH(); c[index_offset + 20] = 0;
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT,
                "entry 0 is not a key entry");
    FRESH(); c[index_offset] = 0xFF;  /* step of entry 0 */
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT,
                "entry 1: steps not increasing");
    FRESH(); add_le64(c + index_offset + 32, 1);  /* meta_stored of entry 0 */
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT,
                "payloads run past the index");
    FRESH(); add_le64(c + index_offset + 32, -1);
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT, "gap before the index");
    FRESH(); c[index_offset + 47] = 0x7F;  /* n_tensors of entry 0 */
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT, "n_tensors too large");
    FRESH(); c[index_offset + 48] = 1;  /* coding of entry 0's first tensor */
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT, "bad coding (found 1");
    FRESH(); c[index_offset + 48] = 3;
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT, "bad coding (found 3,"
                " expected 0 key, 2 verbatim, 5 key-ema, each but key and"
                " verbatim +128 split in a key entry of a 5.x archive)");
    FRESH(); c[index_offset + 48] = 4;
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT, "bad coding (found 4,");
    FRESH(); c[index_offset + 48] = BDA_KEY | BDA_SPLIT;
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT, "bad coding (found 128,");
    FRESH(); c[index_offset + 48] = BDA_VERBATIM | BDA_SPLIT;
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT, "bad coding (found 130,");
    /* entry 1's first tensor */
    FRESH(); c[index_offset + 48 + 9 * bd_le64(c + index_offset + 40) + 48] = 6;
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT, "entry 1: tensor 0: bad"
                " coding (found 6, expected 0 key, 1 delta, 2 verbatim, 3 ema,"
                " 4 trend, 5 key-ema, each but key and verbatim +128 split in a"
                " delta entry of a 5.x archive)");
    FRESH(); c[24] = 8;  /* n_entries: 8 of 11 */
    CHECK_FAILS(open_patched(c, len, true), BD_E_FORMAT, "index has trailing bytes");
    FRESH(); add_le64(c + index_offset + 8, 64);  /* file_size of entry 0 */
    CHECK_FAILS(open_step(c, len, true, 0), BD_E_FORMAT,
                "step 0': file size mismatch");
    FRESH(); add_le64(c + index_offset + 24, 64);  /* meta_size of entry 0 */
    CHECK_FAILS(open_step(c, len, true, 0), BD_E_FORMAT,
                "step 0: meta: zstd frame content size mismatch");
    FRESH(); c[index_offset + 16] ^= 1;  /* file_crc of entry 0 */
    CHECK_FAILS(open_step(c, len, true, 0), BD_E_FORMAT,
                "step 0: rebuilt checkpoint differs from the original");
    /* A flipped bit in the payload of the last step's last tensor. */
    FRESH(); c[index_offset - 10] ^= 0x10;
    CHECK_FAILS(open_patched(c, len, false), BD_E_FORMAT, "step 1000: tensor");
    test_corrupt_ema(b, c, len);
    test_corrupt_trend(b, c, len);
    free(c);
    free(b);
#undef FRESH
}

/* Archives of majors 1 to 4 (the same layout, no EMA coding in 1.x, no
 * analysis entries before 3.0, no trend coding before 4.0, no key-ema or
 * split residuals before 5.0) still read; one of major 6 does not. */
static void test_versions(void)
{
    char bda[800];
    snprintf(bda, sizeof bda, "%s/foreign/f.bda", run_dir);
    uint8_t *b;
    size_t len;
    CHECK_OK(bd_read_file(bda, &b, &len));
    CHECK(count_coding(bda, BDA_EMA, false) == 0
          && count_coding(bda, ANY_SPLIT, false) == 0, "no EMA and no split"
          " residuals in the foreign run");
    for (uint8_t major = 1; major <= 4; major++) {
        b[4] = major;
        CHECK_OK(open_step(b, len, true, 6));
    }
    uint8_t *coding;
    payload_at(b, 1, 0, &coding);
    uint8_t was = *coding;
    *coding = BDA_EMA;
    b[4] = 1;
    CHECK_FAILS(open_step(b, len, true, 6), BD_E_FORMAT, "entry 1: tensor 0: bad"
                " coding (found 3, expected 0 key, 1 delta, 2 verbatim in a delta"
                " entry of a 1.x archive)");
    *coding = was;
    b[4] = 6;
    CHECK_FAILS(open_step(b, len, true, 6), BD_E_FORMAT,
                "format version 6.0 is newer than this reader (reads 1.x to 5.x)");
    b[4] = 0;
    CHECK_FAILS(open_step(b, len, true, 6), BD_E_FORMAT,
                "format version 0.0 is older than this reader");
    free(b);
}

/* tests/fixtures/archive_v3.bda, written by the 3.0 writer (bd 5b99075:
 * a tiny mlp, 6 checkpoints 10 steps apart with EMA, `bdrun ckpt archive
 * RUN archive_v3.bda optimizer=keys key_every=4`), and archive_v4.bda,
 * written by the 4.0 writer (bd f14ead0: the same recipe, `bd.model("mlp",
 * {size = 8, hidden = 4, seed = 3})` trained 60 steps, batch 8, lr 1e-2,
 * ema 0.9, on 8x8 bumps at dx = dy = 1, a checkpoint every 10 steps), read:
 * every step extracts (the rebuilt file's CRC is the original's), key steps
 * as full checkpoints, the others as analysis ones, and a tensor reads
 * alone as it extracts. */
static void test_old_archive(const char *path, int major, int coding)
{
    uint8_t *b = NULL;
    size_t len;
    CHECK_OK(bd_read_file(path, &b, &len));
    CHECK(b && bd_le16(b + 4) == major, "a %d.x archive (major %u)", major,
          b ? bd_le16(b + 4) : 0);
    CHECK(count_coding(path, BDA_DELTA, false) > 0 && count_coding(path, coding, false) > 0,
          "with delta (%d) and coding %d (%d) payloads", count_coding(path, BDA_DELTA, false),
          coding, count_coding(path, coding, false));
    free(b);
    bd_archive *a = NULL;
    CHECK_OK(bd_archive_open(path, &a));
    CHECK(a && bd_archive_count(a) == 6, "6 entries");
    for (size_t i = 0; a && i < bd_archive_count(a); i++) {
        bd_archive_entry e = bd_archive_entry_at(a, i);
        uint8_t *bytes = NULL;
        bd_ckpt *ck = NULL;
        CHECK_OK(bd_archive_extract_mem(a, e.step, &bytes, &len));
        CHECK_OK(bd_ckpt_load_mem(bytes, len, "extracted", &ck));
        CHECK(e.step == 10 * (i + 1) && e.key == (i % 4 == 0) && ck
              && bd_ckpt_is_analysis(ck) == !e.key, "step %llu: key %d, analysis"
              " %d", (unsigned long long)e.step, e.key, ck && bd_ckpt_is_analysis(ck));
        bd_tensor *t = NULL;
        CHECK_OK(bd_archive_read_tensor(path, e.step, "ema.out.weight", &t));
        const bd_ckpt_tensor *want = ck ? bd_ckpt_tensor_find(ck, "ema.out.weight") : NULL;
        CHECK(t && want && memcmp(t->data, want->data, want->nbytes) == 0,
              "step %llu: ema.out.weight reads as it extracts",
              (unsigned long long)e.step);
        bd_tensor_free(t);
        bd_ckpt_free(ck);
        free(bytes);
    }
    bd_archive_close(a);
}

static void test_old_archives(void)
{
    test_old_archive("tests/fixtures/archive_v3.bda", 3, BDA_EMA);
    test_old_archive("tests/fixtures/archive_v4.bda", 4, BDA_TREND);
}

/* Each version refuses the codings that came after it, saying which it
 * reads: the 4.0 fixture read as 3.x, and with a split or key-ema coding
 * in it (1.x: test_versions). */
static void test_old_codings(void)
{
    uint8_t *b = NULL, *c = NULL;
    size_t len;
    CHECK_OK(bd_read_file("tests/fixtures/archive_v4.bda", &b, &len));
    if (!b)
        return;
    c = malloc(len);
    uint64_t e = 0, t = 0;
    uint8_t *coding;
    CHECK(find_coded(b, BDA_TREND, true, &e, &t), "the 4.0 fixture has a trend payload");
    memcpy(c, b, len);
    c[4] = 3;
    char want[300];
    snprintf(want, sizeof want, "entry %llu: tensor %llu: bad coding (found 4,"
             " expected 0 key, 1 delta, 2 verbatim, 3 ema in a delta entry of a"
             " 3.x archive)", (unsigned long long)e, (unsigned long long)t);
    CHECK_FAILS(open_step(c, len, true, 20), BD_E_FORMAT, want);
    memcpy(c, b, len);
    payload_at(c, 1, 0, &coding);
    *coding |= BDA_SPLIT;
    CHECK_FAILS(open_step(c, len, true, 20), BD_E_FORMAT, "entry 1: tensor 0:"
                " bad coding (found 131, expected 0 key, 1 delta, 2 verbatim, 3"
                " ema, 4 trend in a delta entry of a 4.x archive)");
    memcpy(c, b, len);
    payload_at(c, 0, 0, &coding);
    *coding = BDA_EMA_KEY;
    CHECK_FAILS(open_step(c, len, true, 20), BD_E_FORMAT, "entry 0: tensor 0:"
                " bad coding (found 5, expected 0 key, 2 verbatim in a key entry"
                " of a 4.x archive)");
    free(c);
    free(b);
}

/* An analysis archive's entry flag: only 0 or 1, only in 3.x, and it must
 * agree with the checkpoint's bd.kind. */
static void test_corrupt_analysis(void)
{
    char bda[800];
    snprintf(bda, sizeof bda, "%s/analysis.bda", run_dir);
    uint8_t *b;
    size_t len;
    CHECK_OK(bd_read_file(bda, &b, &len));
    uint8_t *entry1 = b + bd_le64(b + 32) + 48 + 9 * bd_le64(b + bd_le64(b + 32) + 40);
    CHECK(entry1[21] == 1, "entry 1 is an analysis entry");
    entry1[21] = 2;
    CHECK_FAILS(open_step(b, len, true, 100), BD_E_FORMAT, "entry 1: bad kind or"
                " reserved bytes (found 00 02 00 00, expected 00/01 00/01 00 00 in"
                " a 5.x archive)");
    entry1[21] = 1;
    b[4] = 2;
    CHECK_FAILS(open_step(b, len, true, 100), BD_E_FORMAT, "entry 1: bad kind or"
                " reserved bytes (found 00 01 00 00, expected 00/01 00 00 00 in a"
                " 2.x archive)");
    b[4] = BDA_MAJOR;
    entry1[21] = 0;
    CHECK_FAILS(open_step(b, len, true, 100), BD_E_FORMAT, "step 100: entry does"
                " not match its checkpoint (the entry says not analysis, the"
                " checkpoint's bd.kind is \"analysis\")");
    entry1[21] = 1;
    b[bd_le64(b + 32) + 21] = 1;  /* entry 0, a full checkpoint */
    CHECK_FAILS(open_step(b, len, true, 0), BD_E_FORMAT, "step 0: entry does"
                " not match its checkpoint (the entry says analysis, the"
                " checkpoint's bd.kind is not \"analysis\")");
    free(b);
}

/* The 5.0 codings in an archive: a key-ema payload with a flipped
 * coefficient, one too short for its coefficient, key-ema coding on a
 * tensor that is not an EMA, split residuals of a u8 tensor. */
static void test_corrupt_ema_key(void)
{
    size_t len;
    uint8_t *b = archive_bytes(&len), *c = malloc(len), *coding;
    uint64_t e = 0, t = 0;
    CHECK(find_coded(b, BDA_EMA_KEY, false, &e, &t), "the archive has key-ema"
          " payloads");
    memcpy(c, b, len);
    uint64_t at = payload_at(c, e, t, &coding);
    c[at + 2] ^= 0x40;
    CHECK_FAILS(open_step(c, len, false, 100 * e), BD_E_FORMAT, "crc32c mismatch"
                " of the raw bytes");
    shrink_payload(b, c, len, e, t, 3);
    char want[200];
    snprintf(want, sizeof want, "entry %llu: tensor %llu: key-ema payload of 3"
             " bytes is shorter than its 4 bytes of coefficients",
             (unsigned long long)e, (unsigned long long)t);
    CHECK_FAILS(open_step(c, len, true, 100 * e), BD_E_FORMAT, want);
    /* entry 0's tensors: ema.special, net.decay, ... */
    memcpy(c, b, len);
    payload_at(c, 0, 1, &coding);
    *coding = BDA_EMA_KEY;
    CHECK_FAILS(open_step(c, len, true, 0), BD_E_FORMAT, "step 0: tensor"
                " 'net.decay': key-ema coding without its weights");
    /* step 100's rng.state (u8), its sixth tensor */
    memcpy(c, b, len);
    payload_at(c, 1, 5, &coding);
    *coding = BDA_DELTA | BDA_SPLIT;
    CHECK_FAILS(open_step(c, len, true, 100), BD_E_FORMAT, "step 100: tensor"
                " 'rng.state': split residuals of a u8 tensor (only f32 residuals"
                " split)");
    free(c);
    free(b);
}

int main(void)
{
    setup();
    RUN(test_round_trip);
    RUN(test_late_step_skips_early_entries);
    RUN(test_verbatim_blob);
    RUN(test_ema_prediction_exact);
    RUN(test_trend_prediction_exact);
    RUN(test_trend_fit);
    RUN(test_ema_key_prediction_exact);
    RUN(test_ema_key_fit);
    RUN(test_split_exact);
    RUN(test_corrupt_split);
    RUN(test_analysis_archive);
    RUN(test_versions);
    RUN(test_old_archives);
    RUN(test_old_codings);
    RUN(test_write_errors);
    RUN(test_corrupt_archive);
    RUN(test_corrupt_analysis);
    RUN(test_corrupt_ema_key);
    tmp_rmdir(strdup(run_dir));
    return harness_summary();
}
