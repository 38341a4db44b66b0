/* Shared helpers of the checkpoint tests: sample checkpoints, comparison,
 * temporary folders and byte patching of encoded files. */
#ifndef BD_TEST_CKPT_UTIL_H
#define BD_TEST_CKPT_UTIL_H

#include <dirent.h>
#include <stdint.h>
#include <unistd.h>

#include "bd/ckpt.h"
#include "ckpt/format.h"
#include "harness.h"

/* A folder under $TMPDIR (or /tmp), removed with its files by tmp_rmdir. */
HARNESS_FN char *tmp_mkdir(void)
{
    const char *base = getenv("TMPDIR");
    static char path[512];
    snprintf(path, sizeof path, "%s/bd_ckpt_XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(path)) {
        printf("cannot create a temporary folder\n");
        exit(2);
    }
    return strdup(path);
}

HARNESS_FN void tmp_rmdir(char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0) {   /* a sub-folder */
            char *sub = strdup(path);
            tmp_rmdir(sub);
        }
    }
    if (d)
        closedir(d);
    rmdir(dir);
    free(dir);
}

/* A smooth float32 tensor (compressible like trained weights). */
HARNESS_FN void fill_smooth(float *x, int64_t n, double phase)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(0.1 * sin(0.01 * (double)i + phase)
                       + 0.001 * (harness_uniform() - 0.5));
}

/* A checkpoint with every key type and a mix of tensors: compressible and
 * random f32, small (stored raw), bytes, a scalar, an empty and a 5-dim one. */
HARNESS_FN bd_ckpt *sample_ckpt(double phase)
{
    bd_ckpt *ck = bd_ckpt_new();
    static const int64_t ints[] = {1, -2, INT64_MAX, INT64_MIN};
    static const double reals[] = {0.5, -1e300, 3.25};
    CHECK_OK(bd_ckpt_set_str(ck, "bd.kind", "train_state"));
    CHECK_OK(bd_ckpt_set_u64(ck, "bd.step", UINT64_MAX - 7));
    CHECK_OK(bd_ckpt_set_i64(ck, "bd.data.position", -42));
    CHECK_OK(bd_ckpt_set_f64(ck, "bd.optim.lr", 3e-4));
    CHECK_OK(bd_ckpt_set_i64s(ck, "bd.rng.state", ints, 4));
    CHECK_OK(bd_ckpt_set_f64s(ck, "meta.reals", reals, 3));
    CHECK_OK(bd_ckpt_set_str(ck, "meta.empty", ""));

    int64_t big[2] = {64, 33}, small[1] = {5}, five[5] = {2, 1, 3, 1, 2};
    int64_t empty[2] = {0, 3};
    bd_tensor *w = bd_tensor_new(2, big, false);
    fill_smooth(w->data, w->numel, phase);
    CHECK_OK(bd_ckpt_add_tensor(ck, "down1.conv1.weight", w));
    harness_fill(w, -1, 1);
    CHECK_OK(bd_ckpt_add_tensor(ck, "noise", w));
    bd_tensor_free(w);
    float b[5] = {1, 2, 3, 4, (float)phase}, s = 7.5f, f5[12] = {0};
    f5[3] = -0.0f;
    CHECK_OK(bd_ckpt_add_array(ck, "down1.conv1.bias", BD_CKPT_F32, 1, small, b));
    CHECK_OK(bd_ckpt_add_array(ck, "scalar", BD_CKPT_F32, 0, NULL, &s));
    CHECK_OK(bd_ckpt_add_array(ck, "five", BD_CKPT_F32, 5, five, f5));
    CHECK_OK(bd_ckpt_add_array(ck, "empty", BD_CKPT_F32, 2, empty, NULL));
    CHECK_OK(bd_ckpt_add_bytes(ck, "rng.bytes", "\x01\x02\x03\x00\xff", 5));
    return ck;
}

/* Same keys, types and values, same tensors bit for bit. */
HARNESS_FN bool ckpt_equal(const bd_ckpt *a, const bd_ckpt *b)
{
    if (bd_ckpt_kv_count(a) != bd_ckpt_kv_count(b)
        || bd_ckpt_tensor_count(a) != bd_ckpt_tensor_count(b))
        return false;
    for (size_t i = 0; i < bd_ckpt_kv_count(a); i++) {
        const bd_ckpt_kv *x = bd_ckpt_kv_at(a, i), *y = bd_ckpt_kv_at(b, i);
        if (strcmp(x->key, y->key) || x->type != y->type || x->n != y->n)
            return false;
        bool block = x->type >= BD_CKPT_STR;
        size_t bytes = x->type == BD_CKPT_STR ? x->n : 8 * x->n;
        if (block ? memcmp(x->v.str, y->v.str, bytes) : x->v.u64 != y->v.u64)
            return false;
    }
    for (size_t i = 0; i < bd_ckpt_tensor_count(a); i++) {
        const bd_ckpt_tensor *x = bd_ckpt_tensor_at(a, i);
        const bd_ckpt_tensor *y = bd_ckpt_tensor_at(b, i);
        if (strcmp(x->name, y->name) || x->dtype != y->dtype
            || x->ndim != y->ndim || x->nbytes != y->nbytes
            || memcmp(x->dims, y->dims, sizeof(int64_t) * (size_t)x->ndim)
            || memcmp(x->data, y->data, x->nbytes))
            return false;
    }
    return true;
}

/* The first occurrence of needle in hay (NULL if none). */
HARNESS_FN uint8_t *find_bytes(uint8_t *hay, size_t n, const void *needle,
                               size_t k)
{
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return hay + i;
    return NULL;
}

HARNESS_FN bool file_equals(const char *path, const uint8_t *bytes, size_t len)
{
    uint8_t *got;
    size_t n;
    if (bd_read_file(path, &got, &n) != BD_OK)
        return false;
    bool same = n == len && memcmp(got, bytes, len) == 0;
    free(got);
    return same;
}

#endif
