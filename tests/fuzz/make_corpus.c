/* Writes the seed corpora of the fuzz targets:
 *     make_corpus tests/fuzz/corpus_ckpt tests/fuzz/corpus_archive
 * Run it again (from the repository root) after a format change. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bd/ckpt.h"
#include "ckpt/format.h"

static void check(bd_status s)
{
    if (s != BD_OK) {
        fprintf(stderr, "make_corpus: %s\n", bd_last_error());
        exit(1);
    }
}

static void save(const bd_ckpt *ck, const char *dir, const char *name, int level)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    bd_ckpt_save_opts o = {.level = level};
    check(bd_ckpt_save(ck, path, &o));
}

static void add_kvs(bd_ckpt *ck)
{
    static const int64_t ints[3] = {1, -1, 1 << 20};
    static const double reals[2] = {0.25, -8.5};
    check(bd_ckpt_set_u64(ck, "bd.step", 1000));
    check(bd_ckpt_set_i64(ck, "bd.epoch", -3));
    check(bd_ckpt_set_f64(ck, "bd.optim.lr", 3e-4));
    check(bd_ckpt_set_str(ck, "bd.arch", "unet_tiny"));
    check(bd_ckpt_set_i64s(ck, "bd.rng.state", ints, 3));
    check(bd_ckpt_set_f64s(ck, "meta.reals", reals, 2));
}

static void add_small(bd_ckpt *ck)
{
    int64_t one[1] = {3}, five[5] = {1, 2, 1, 1, 2}, empty[2] = {2, 0};
    float x[4] = {1, -2, 0.5f, 3}, s = 9;
    check(bd_ckpt_add_array(ck, "b", BD_CKPT_F32, 1, one, x));
    check(bd_ckpt_add_array(ck, "five", BD_CKPT_F32, 5, five, x));
    check(bd_ckpt_add_array(ck, "none", BD_CKPT_F32, 2, empty, NULL));
    check(bd_ckpt_add_array(ck, "s", BD_CKPT_F32, 0, NULL, &s));
    check(bd_ckpt_add_bytes(ck, "rng", "\x01\x02\x03", 3));
}

/* 1024 smooth floats (compressible, so zstd with byte shuffle). */
static void add_smooth(bd_ckpt *ck, const char *name, double phase)
{
    int64_t dims[2] = {32, 32};
    float x[1024];
    for (int i = 0; i < 1024; i++)
        x[i] = (float)(0.1 * sin(0.05 * i + phase));
    check(bd_ckpt_add_array(ck, name, BD_CKPT_F32, 2, dims, x));
}

static void bdc_seeds(const char *dir)
{
    bd_ckpt *ck = bd_ckpt_new();
    save(ck, dir, "empty.bdc", 3);
    add_kvs(ck);
    save(ck, dir, "kvs.bdc", 3);
    bd_ckpt_free(ck);

    ck = bd_ckpt_new();
    add_small(ck);
    save(ck, dir, "raw.bdc", 0);
    bd_ckpt_free(ck);

    ck = bd_ckpt_new();
    add_smooth(ck, "w", 0.0);
    save(ck, dir, "zstd_shuffle.bdc", 3);
    bd_ckpt_free(ck);

    ck = bd_ckpt_new();
    uint8_t bytes[4096];
    for (int i = 0; i < 4096; i++)
        bytes[i] = (uint8_t)(i / 64);
    check(bd_ckpt_add_bytes(ck, "state", bytes, sizeof bytes));
    save(ck, dir, "zstd_plain.bdc", 3);
    bd_ckpt_free(ck);

    ck = bd_ckpt_new();
    add_kvs(ck);
    add_small(ck);
    add_smooth(ck, "net.w", 1.0);
    save(ck, dir, "mixed.bdc", 1);
    uint8_t *img;
    size_t len;
    check(bd_ckpt_encode(ck, NULL, &img, &len));
    char path[1024];
    snprintf(path, sizeof path, "%s/truncated.bdc", dir);
    check(bd_write_file_atomic(path, img, len * 2 / 3));
    free(img);
    bd_ckpt_free(ck);
}

static void bda_seeds(const char *dir)
{
    char run[1024], ckdir[1100], out[1100];
    snprintf(run, sizeof run, "%s/run.tmp", dir);
    snprintf(ckdir, sizeof ckdir, "%s/ckpt", run);
    mkdir(run, 0755);
    mkdir(ckdir, 0755);
    for (int step = 0; step < 4; step++) {  /* net.w on a line: trend coded */
        bd_ckpt *ck = bd_ckpt_new();
        check(bd_ckpt_set_u64(ck, "bd.step", (uint64_t)step));
        add_smooth(ck, "net.w", 0.01 * step);
        add_smooth(ck, "ema.net.w", 0.004 * step);  /* coded from net.w */
        add_small(ck);
        char name[64];
        snprintf(name, sizeof name, "step_%d.bdc", step);
        save(ck, ckdir, name, step == 1 ? 0 : 3);
        bd_ckpt_free(ck);
    }
    bd_archive_opts o = {.level = 3, .key_every = 3};
    snprintf(out, sizeof out, "%s/four.bda", dir);
    check(bd_archive_create(run, out, &o));
    for (int step = 0; step < 4; step++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/step_%d.bdc", ckdir, step);
        unlink(path);
    }
    rmdir(ckdir);
    rmdir(run);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_corpus CKPT_DIR ARCHIVE_DIR\n");
        return 2;
    }
    bdc_seeds(argv[1]);
    bda_seeds(argv[2]);
    return 0;
}
