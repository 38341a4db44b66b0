/* `bdrun ckpt ...` through bd_ckpt_main: exit codes and the files written. */
#include <sys/stat.h>
#include <unistd.h>

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

/* bd_ckpt_main's exit code, with what it printed to stdout in out. */
static int ckpt_output(char *out, size_t cap, const char *a, const char *b,
                       const char *c, const char *d)
{
    char path[] = "/tmp/bd_cli_out_XXXXXX";
    int fd = mkstemp(path), saved = dup(STDOUT_FILENO);
    fflush(stdout);
    dup2(fd, STDOUT_FILENO);
    int code = ckpt(a, b, c, d, NULL);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    ssize_t n = pread(fd, out, cap - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    printf("%s", out);
    return code;
}

/* Flip a byte in the middle of entry i's payload (entries follow the
 * header one after another, header_size at byte 8). */
static void damage_entry(const char *bda, size_t i)
{
    bd_archive *a;
    CHECK_OK(bd_archive_open(bda, &a));
    uint8_t head[12];
    FILE *f = fopen(bda, "r+b");
    CHECK(f && fread(head, 1, 12, f) == 12, "read the header");
    uint64_t at = head[8] | head[9] << 8 | (uint64_t)head[10] << 16
                | (uint64_t)head[11] << 24;
    for (size_t k = 0; k < i; k++)
        at += bd_archive_entry_at(a, k).stored_size;
    at += bd_archive_entry_at(a, i).stored_size / 2;
    bd_archive_close(a);
    int c;
    fseek(f, (long)at, SEEK_SET);
    c = fgetc(f);
    fseek(f, (long)at, SEEK_SET);
    fputc(c ^ 0x55, f);
    fclose(f);
}

/* verify of an archive checks every entry, also those outside the chain
 * of the step one extracts, and ends with a summary line. */
static void test_verify_archive(void)
{
    char run[700], ck_dir[800], path[900], bda[800], out[8192], want[2400];
    snprintf(run, sizeof run, "%s/history", dir);
    snprintf(ck_dir, sizeof ck_dir, "%s/ckpt", run);
    mkdir(run, 0755);
    mkdir(ck_dir, 0755);
    for (int k = 1; k <= 4; k++) {
        bd_ckpt *ck = sample_ckpt(0.1 * k);
        snprintf(path, sizeof path, "%s/step_%d.bdc", ck_dir, 10 * k);
        CHECK_OK(bd_ckpt_save(ck, path, NULL));
        bd_ckpt_free(ck);
    }
    snprintf(bda, sizeof bda, "%s/history.bda", dir);
    CHECK(ckpt_output(out, sizeof out, "archive", run, bda, "key_every=2") == 0,
          "archive");
    struct stat st;
    CHECK(stat(bda, &st) == 0, "stat");
    snprintf(want, sizeof want, " -> %lld (", (long long)st.st_size);
    CHECK(strstr(out, want), "the printed size is the file's: %s", out);

    CHECK(ckpt_output(out, sizeof out, "verify", bda, NULL, NULL) == 0, "verify");
    snprintf(want, sizeof want, "ok    %s: 4 of 4 entries verified", bda);
    CHECK(strstr(out, "ok    step 10 (key)\nok    step 20\nok    step 30 (key)\n"
                 "ok    step 40\n") && strstr(out, want), "%s", out);

    /* a delta entry outside step 40's chain (30, 40): extract 40 works,
     * verify names step 20 */
    damage_entry(bda, 1);
    snprintf(path, sizeof path, "%s/back.bdc", dir);
    CHECK(ckpt_output(out, sizeof out, "extract", bda, "40", path) == 0,
          "step 40 extracts: the damage is outside its chain");
    CHECK(ckpt_output(out, sizeof out, "verify", bda, NULL, NULL) == 1,
          "verify finds it");
    snprintf(want, sizeof want, "FAIL  %s: 3 of 4 entries verified, the others"
             " damaged or not checkable", bda);
    CHECK(strstr(out, "ok    step 10 (key)\nFAIL  ") && strstr(out, "step 20")
          && strstr(out, "ok    step 30 (key)\nok    step 40\n")
          && strstr(out, want), "%s", out);

    /* a key entry: the delta after it cannot be checked, and says so */
    damage_entry(bda, 2);
    CHECK(ckpt_output(out, sizeof out, "verify", bda, NULL, NULL) == 1, "verify");
    snprintf(want, sizeof want, "FAIL  %s: 1 of 4 entries verified", bda);
    CHECK(strstr(out, "step 40: not checked: it is coded against an earlier"
                 " entry that failed") && strstr(out, want), "%s", out);

    /* the ckpt/ folder instead of the run folder: what to pass */
    CHECK(ckpt("archive", ck_dir, bda, NULL, NULL) == 1, "archive of ckpt/");
    snprintf(want, sizeof want, "archive: '%s' is a run's checkpoint folder;"
             " pass the run folder that holds it: %s", ck_dir, run);
    CHECK(strstr(bd_last_error(), want), "%s", bd_last_error());
    CHECK(ckpt("archive", path, bda, NULL, NULL) == 1, "archive of a file");
    CHECK(strstr(bd_last_error(), "is a file; pass a run folder"), "%s",
          bd_last_error());
}

int main(void)
{
    setup();
    RUN(test_usage);
    RUN(test_inspect_verify_diff);
    RUN(test_export);
    RUN(test_archive);
    RUN(test_verify_archive);
    tmp_rmdir(strdup(dir));
    return harness_summary();
}
