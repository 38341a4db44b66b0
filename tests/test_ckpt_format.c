/* .bdc: the in-memory object, bitwise round trips (raw and zstd), storage
 * choices, determinism and atomic writes. The corruption suite is in
 * test_ckpt_corrupt.c. */
#include <signal.h>
#include <sys/resource.h>

#include "test_ckpt_util.h"

static void test_crc32c(void)
{
    CHECK(bd_crc32c(0, "123456789", 9) == 0xE3069283u, "crc32c known answer");
    uint32_t split = bd_crc32c(bd_crc32c(0, "1234", 4), "56789", 5);
    CHECK(split == 0xE3069283u, "crc32c continues across calls");
    CHECK(bd_crc32c(0, "", 0) == 0, "crc32c of nothing");
}

static void test_kv_api(void)
{
    bd_ckpt *ck = bd_ckpt_new();
    CHECK_OK(bd_ckpt_set_i64(ck, "bd.step", 5));
    CHECK_OK(bd_ckpt_set_str(ck, "bd.step", "replaced"));
    const char *s = NULL;
    CHECK_OK(bd_ckpt_get_str(ck, "bd.step", &s));
    CHECK(s && strcmp(s, "replaced") == 0, "set replaces a key of another type");
    int64_t v;
    CHECK_FAILS(bd_ckpt_get_i64(ck, "bd.step", &v), BD_E_ARG,
                "key 'bd.step' is str, expected i64");
    CHECK_FAILS(bd_ckpt_get_i64(ck, "bd.epoch", &v), BD_E_ARG, "no key 'bd.epoch'");
    CHECK_FAILS(bd_ckpt_set_i64(ck, "Bd.step", 1), BD_E_ARG, "bad key name 'Bd.step'");
    CHECK_FAILS(bd_ckpt_set_i64(ck, "bd..step", 1), BD_E_ARG, "bad key name");
    CHECK_FAILS(bd_ckpt_set_i64(ck, "bd.", 1), BD_E_ARG, "bad key name");
    CHECK_FAILS(bd_ckpt_set_i64(ck, "", 1), BD_E_ARG, "length 0");
    CHECK(bd_ckpt_kv_count(ck) == 1, "failed sets add nothing");

    int64_t dims[1] = {3};
    float x[3] = {1, 2, 3};
    CHECK_OK(bd_ckpt_add_array(ck, "w", BD_CKPT_F32, 1, dims, x));
    CHECK_FAILS(bd_ckpt_add_array(ck, "w", BD_CKPT_F32, 1, dims, x), BD_E_ARG,
                "tensor 'w' added twice");
    CHECK_FAILS(bd_ckpt_add_array(ck, "v", 7, 1, dims, x), BD_E_ARG, "dtype 7");
    CHECK_FAILS(bd_ckpt_add_array(ck, "v", BD_CKPT_F32, 9, dims, x), BD_E_ARG,
                "9 dims");
    CHECK_FAILS(bd_ckpt_add_array(ck, "v", BD_CKPT_F32, 1, dims, NULL), BD_E_ARG,
                "NULL data");
    CHECK(bd_ckpt_tensor_count(ck) == 1, "failed adds add nothing");

    bd_tensor *t = bd_tensor_new4(3, 0, 0, 0, false), *u = NULL;
    CHECK_OK(bd_ckpt_read_into(ck, "w", t));
    CHECK(t->data[2] == 3.0f, "read_into copies");
    CHECK_OK(bd_ckpt_get_tensor(ck, "w", &u));
    CHECK(u && u->ndim == 1 && u->shape[0] == 3 && u->data[1] == 2.0f,
          "get_tensor copies");
    bd_tensor *wrong = bd_tensor_new4(4, 0, 0, 0, false);
    CHECK_FAILS(bd_ckpt_read_into(ck, "w", wrong), BD_E_ARG,
                "tensor 'w' has shape (3), expected (4)");
    CHECK_OK(bd_ckpt_add_bytes(ck, "blob", "ab", 2));
    CHECK_FAILS(bd_ckpt_read_into(ck, "blob", wrong), BD_E_ARG, "is u8, expected f32");
    bd_tensor_free(t);
    bd_tensor_free(u);
    bd_tensor_free(wrong);
    bd_ckpt_free(ck);
}

static void round_trip(int level)
{
    char *dir = tmp_mkdir(), path[600];
    snprintf(path, sizeof path, "%s/a.bdc", dir);
    bd_ckpt *ck = sample_ckpt(0.0), *back = NULL;
    bd_ckpt_save_opts opts = {.level = level};
    CHECK_OK(bd_ckpt_save(ck, path, &opts));
    CHECK_OK(bd_ckpt_load(path, &back));
    CHECK(back && ckpt_equal(ck, back), "level %d: round trip is bitwise", level);
    CHECK_OK(bd_ckpt_verify(path));
    if (back) {
        const bd_ckpt_tensor *w = bd_ckpt_tensor_find(back, "down1.conv1.weight");
        const bd_ckpt_tensor *b = bd_ckpt_tensor_find(back, "down1.conv1.bias");
        CHECK(w->stored.codec == (level ? 1 : 0), "level %d: big tensor codec %d",
              level, w->stored.codec);
        CHECK(!level || (w->stored.filter == 1 && w->stored.level == level),
              "smooth f32 is byte-shuffled (filter %d)", w->stored.filter);
        CHECK(!level || w->stored.stored_size < w->nbytes * 4 / 5,
              "smooth f32 compresses: %llu of %llu bytes",
              (unsigned long long)w->stored.stored_size,
              (unsigned long long)w->nbytes);
        CHECK(b->stored.codec == 0, "tensors under 4 KiB are raw");
        printf("   level %d: weight %llu -> %llu bytes\n", level,
               (unsigned long long)w->nbytes,
               (unsigned long long)w->stored.stored_size);
    }
    /* Same checkpoint, same bytes; a reloaded checkpoint writes the same file. */
    uint8_t *one, *two;
    size_t n1, n2;
    CHECK_OK(bd_ckpt_encode(ck, &opts, &one, &n1));
    CHECK_OK(bd_ckpt_encode(back, &opts, &two, &n2));
    CHECK(n1 == n2 && memcmp(one, two, n1) == 0, "encoding is deterministic");
    CHECK(file_equals(path, one, n1), "save writes the encoded image");
    free(one);
    free(two);
    bd_ckpt_free(back);
    bd_ckpt_free(ck);
    tmp_rmdir(dir);
}

static void test_round_trip(void)
{
    round_trip(0);
    round_trip(1);
    round_trip(3);
    round_trip(19);
    bd_ckpt *ck = bd_ckpt_new(), *back = NULL;
    uint8_t *bytes;
    size_t len;
    CHECK_OK(bd_ckpt_encode(ck, NULL, &bytes, &len));
    CHECK(len == 64, "an empty checkpoint is its header (%zu bytes)", len);
    CHECK_OK(bd_ckpt_load_mem(bytes, len, "empty", &back));
    CHECK(back && ckpt_equal(ck, back), "empty round trip");
    bd_ckpt_save_opts bad = {.level = 20};
    CHECK_FAILS(bd_ckpt_encode(ck, &bad, &bytes, &len), BD_E_ARG,
                "zstd level 20, expected 0 (raw) to 19");
    free(bytes);
    bd_ckpt_free(back);
    bd_ckpt_free(ck);
}

/* How many entries of dir start with prefix. */
static int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

/* A write that fails halfway (file size limit) leaves the old file whole
 * and no temporary file behind. */
static void test_atomic_failure(void)
{
    char *dir = tmp_mkdir(), path[600];
    snprintf(path, sizeof path, "%s/a.bdc", dir);
    bd_ckpt *ck = sample_ckpt(1.0);
    uint8_t *old;
    size_t old_len;
    CHECK_OK(bd_ckpt_encode(ck, NULL, &old, &old_len));
    CHECK_OK(bd_ckpt_save(ck, path, NULL));

    bd_ckpt *bigger = sample_ckpt(2.0);
    int64_t dims[1] = {1 << 16};
    float *noise = calloc(1 << 16, sizeof *noise);
    CHECK_OK(bd_ckpt_add_array(bigger, "zzz", BD_CKPT_F32, 1, dims, noise));
    struct rlimit keep;
    getrlimit(RLIMIT_FSIZE, &keep);
    struct rlimit small = {.rlim_cur = 4096, .rlim_max = keep.rlim_max};
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &small);
    bd_ckpt_save_opts raw = {.level = 0};
    CHECK_FAILS(bd_ckpt_save(bigger, path, &raw), BD_E_IO, "File too large");
    setrlimit(RLIMIT_FSIZE, &keep);
    signal(SIGXFSZ, old_handler);
    CHECK(file_equals(path, old, old_len), "old checkpoint untouched");
    CHECK(count_files(dir, "a.bdc.tmp-") == 0, "temporary file removed");
    CHECK_OK(bd_ckpt_verify(path));

    char missing[700];
    snprintf(missing, sizeof missing, "%s/no/such/dir/a.bdc", dir);
    CHECK_FAILS(bd_ckpt_save(ck, missing, NULL), BD_E_IO, "cannot create");
    CHECK_FAILS(bd_ckpt_load(missing, &bigger), BD_E_IO, "No such file");
    free(noise);
    free(old);
    bd_ckpt_free(bigger);
    bd_ckpt_free(ck);
    tmp_rmdir(dir);
}

int main(void)
{
    RUN(test_crc32c);
    RUN(test_kv_api);
    RUN(test_round_trip);
    RUN(test_atomic_failure);
    return harness_summary();
}
