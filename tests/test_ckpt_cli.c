/* `bdrun ckpt ...` through bd_ckpt_main: exit codes and the files written. */
#include <sys/stat.h>

#include "test_ckpt_util.h"

static int ckpt(const char *a, const char *b, const char *c, const char *d,
                const char *e)
{
    char *argv[7] = {"ckpt", (char *)a, (char *)b, (char *)c, (char *)d,
                     (char *)e, NULL};
    int argc = 1;
    while (argc < 6 && argv[argc])
        argc++;
    fflush(stdout);
    return bd_ckpt_main(argc, argv);
}

static char dir[600], a_path[800], b_path[800];

static void setup(void)
{
    char *tmp = tmp_mkdir(), ck_dir[700];
    snprintf(dir, sizeof dir, "%s", tmp);
    free(tmp);
    snprintf(ck_dir, sizeof ck_dir, "%s/ckpt", dir);
    mkdir(ck_dir, 0755);
    snprintf(a_path, sizeof a_path, "%s/step_10.bdc", ck_dir);
    snprintf(b_path, sizeof b_path, "%s/step_20.bdc", ck_dir);
    bd_ckpt *a = sample_ckpt(0.0), *b = sample_ckpt(0.0);
    CHECK_OK(bd_ckpt_set_i64(b, "bd.data.position", 7));
    CHECK_OK(bd_ckpt_set_str(b, "meta.added", "yes"));
    CHECK_OK(bd_ckpt_save(a, a_path, NULL));
    CHECK_OK(bd_ckpt_save(b, b_path, NULL));
    bd_ckpt_free(a);
    bd_ckpt_free(b);
}

static void test_usage(void)
{
    CHECK(ckpt(NULL, NULL, NULL, NULL, NULL) == 2, "no command: usage");
    CHECK(ckpt("frobnicate", "x", NULL, NULL, NULL) == 2, "unknown command: usage");
    CHECK(ckpt("inspect", NULL, NULL, NULL, NULL) == 2, "missing file: usage");
    CHECK(ckpt("archive", dir, "x.bda", "level=99", NULL) == 2, "bad level: usage");
    CHECK(ckpt("extract", "x.bda", "-3", NULL, NULL) == 2, "bad step: usage");
}

static void test_inspect_verify_diff(void)
{
    CHECK(ckpt("inspect", a_path, NULL, NULL, NULL) == 0, "inspect");
    CHECK(ckpt("verify", a_path, b_path, NULL, NULL) == 0, "verify two files");
    char bad[700];
    snprintf(bad, sizeof bad, "%s/bad.bdc", dir);
    CHECK_OK(bd_write_file_atomic(bad, "BDCK", 4));
    CHECK(ckpt("verify", a_path, bad, NULL, NULL) == 1, "verify a bad file: 1");
    CHECK(ckpt("inspect", bad, NULL, NULL, NULL) == 1, "inspect a bad file: 1");
    unlink(bad);
    CHECK(ckpt("diff", a_path, a_path, NULL, NULL) == 0, "diff identical: 0");
    CHECK(ckpt("diff", a_path, b_path, NULL, NULL) == 1, "diff different: 1");
}

static void test_export(void)
{
    char npy[700];
    snprintf(npy, sizeof npy, "%s/w.npy", dir);
    CHECK(ckpt("export", a_path, "down1.conv1.weight", npy, NULL) == 0, "export");
    CHECK(ckpt("export", a_path, "nope", npy, NULL) == 1, "export a missing tensor");
    uint8_t *bytes;
    size_t len;
    CHECK_OK(bd_read_file(npy, &bytes, &len));
    const char *want = "{'descr': '<f4', 'fortran_order': False, 'shape': (64, 33), }";
    uint16_t header = bd_le16(bytes + 8);
    CHECK(memcmp(bytes, "\x93NUMPY\x01\x00", 8) == 0, "npy magic");
    CHECK((10 + header) % 64 == 0 && bytes[9 + header] == '\n', "npy header padded");
    CHECK(memcmp(bytes + 10, want, strlen(want)) == 0, "npy dict: %.*s",
          (int)strlen(want), bytes + 10);
    bd_ckpt *ck;
    CHECK_OK(bd_ckpt_load(a_path, &ck));
    const bd_ckpt_tensor *w = bd_ckpt_tensor_find(ck, "down1.conv1.weight");
    CHECK(len == 10 + header + w->nbytes
          && memcmp(bytes + 10 + header, w->data, w->nbytes) == 0, "npy data");
    free(bytes);
    CHECK(ckpt("export", a_path, "down1.conv1.bias", npy, NULL) == 0, "export 1-dim");
    CHECK_OK(bd_read_file(npy, &bytes, &len));
    CHECK(strstr((char *)bytes + 10, "'shape': (5,), }") != NULL, "1-dim shape");
    free(bytes);
    bd_ckpt_free(ck);
    unlink(npy);
}

static void test_archive(void)
{
    char bda[700], out[700];
    snprintf(bda, sizeof bda, "%s/run.bda", dir);
    snprintf(out, sizeof out, "%s/back.bdc", dir);
    CHECK(ckpt("archive", dir, bda, "level=5", "key_every=2") == 0, "archive");
    CHECK(ckpt("ls", bda, NULL, NULL, NULL) == 0, "ls");
    CHECK(ckpt("extract", bda, "20", out, NULL) == 0, "extract");
    uint8_t *want;
    size_t len;
    CHECK_OK(bd_read_file(b_path, &want, &len));
    CHECK(file_equals(out, want, len), "extracted file is the original");
    free(want);
    CHECK(ckpt("extract", bda, "30", out, NULL) == 1, "extract a missing step");
    CHECK(ckpt("ls", a_path, NULL, NULL, NULL) == 1, "ls of a .bdc fails");
}

int main(void)
{
    setup();
    RUN(test_usage);
    RUN(test_inspect_verify_diff);
    RUN(test_export);
    RUN(test_archive);
    tmp_rmdir(strdup(dir));
    return harness_summary();
}
