/* Run directories: config.json, metrics.jsonl, names, and the JSON text. */
#include "bd/run.h"
#include "harness.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[64]; /* /tmp/bd-test-run-<pid>/nested/runs */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *s = calloc(1, 1 << 16);
    size_t n = fread(s, 1, (1 << 16) - 1, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* <dir>/<name> holding text. */
static void write_text(const char *dir, const char *name, const char *text)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static bool has_file(const char *dir, const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void test_json(void)
{
    bd_json j;
    bd_json_init(&j);
    bd_json_begin_object(&j, NULL);
    bd_json_number(&j, "step", 200);
    bd_json_number(&j, "loss", 0.1);
    bd_json_number(&j, "third", 1.0 / 3.0);
    bd_json_number(&j, "bad", NAN);
    bd_json_number(&j, "big", -1e300);
    bd_json_string(&j, "note", "a \"quoted\"\\ line\n\ttab");
    bd_json_bool(&j, "ema", true);
    bd_json_begin_array(&j, "acc");
    bd_json_number(&j, NULL, 0.5);
    bd_json_begin_object(&j, NULL);
    bd_json_end_object(&j);
    bd_json_begin_array(&j, NULL);
    bd_json_end_array(&j);
    bd_json_end_array(&j);
    bd_json_end_object(&j);
    const char *want = "{\"step\":200,\"loss\":0.1,\"third\":0.33333333333333331,"
        "\"bad\":null,\"big\":-1e+300,\"note\":\"a \\\"quoted\\\"\\\\ line\\u000a"
        "\\u0009tab\",\"ema\":true,\"acc\":[0.5,{},[]]}";
    CHECK(j.status == BD_OK && strcmp(j.text, want) == 0, "json\n got %s\nwant %s",
          j.text, want);
    bd_json_free(&j);
}

static void event(bd_json *j, int step, double loss)
{
    bd_json_init(j);
    bd_json_begin_object(j, NULL);
    bd_json_number(j, "step", step);
    bd_json_number(j, "loss", loss);
    bd_json_end_object(j);
}

static void test_run_files(void)
{
    bd_run *r = NULL;
    CHECK_OK(bd_run_open(root, "exp-1.a_b", false, &r));
    if (!r)
        return;
    char want_dir[128], path[256];
    snprintf(want_dir, sizeof want_dir, "%s/exp-1.a_b", root);
    CHECK(strcmp(bd_run_dir(r), want_dir) == 0, "dir %s", bd_run_dir(r));
    bd_json cfg;
    bd_json_init(&cfg);
    bd_json_begin_object(&cfg, NULL);
    bd_json_number(&cfg, "seed", 1);
    bd_json_string(&cfg, "scale", "quick");
    bd_json_end_object(&cfg);
    CHECK_OK(bd_run_write_json(r, "config.json", &cfg));
    bd_json_free(&cfg);
    bd_json e;
    for (int step = 1; step <= 2; step++) {
        event(&e, step * 100, 0.5 / step);
        CHECK_OK(bd_run_log(r, &e));
        bd_json_free(&e);
    }
    CHECK_OK(bd_run_file(r, "config.json", path, sizeof path));
    char *text = slurp(path);
    CHECK(text && strcmp(text, "{\"seed\":1,\"scale\":\"quick\"}\n") == 0,
          "config.json: %s", text ? text : "(missing)");
    free(text);
    CHECK_OK(bd_run_file(r, "config.json.tmp", path, sizeof path));
    CHECK(access(path, F_OK) != 0, "temp file %s left behind", path);
    CHECK_OK(bd_run_file(r, "metrics.jsonl", path, sizeof path));
    text = slurp(path); /* flushed on every line: readable before close */
    CHECK(text && strcmp(text, "{\"step\":100,\"loss\":0.5}\n"
                               "{\"step\":200,\"loss\":0.25}\n") == 0,
          "metrics.jsonl: %s", text ? text : "(missing)");
    free(text);
    CHECK_FAILS(bd_run_file(r, "x", path, 8), BD_E_ARG, "longer than 7 bytes");
    bd_json_init(&e);
    bd_json_number(&e, NULL, 3);
    CHECK_FAILS(bd_run_log(r, &e), BD_E_ARG, "must be a JSON object, got '3'");
    bd_json_free(&e);
    bd_run_close(r);

    /* opening again continues metrics.jsonl; overwrite starts it over */
    CHECK_OK(bd_run_open(root, "exp-1.a_b", false, &r));
    CHECK_OK(bd_run_file(r, "metrics.jsonl", path, sizeof path));
    event(&e, 300, 0.125);
    CHECK_OK(bd_run_log(r, &e));
    bd_json_free(&e);
    bd_run_close(r);
    text = slurp(path);
    CHECK(text && strstr(text, "\"step\":100") && strstr(text, "\"step\":300"),
          "continued metrics.jsonl: %s", text ? text : "(missing)");
    free(text);
    char ckpt[300];
    snprintf(ckpt, sizeof ckpt, "%s/exp-1.a_b/ckpt", root);
    mkdir(ckpt, 0777);
    write_text(ckpt, "step_7.bdc", "a checkpoint");
    write_text(ckpt, "notes.txt", "kept");
    CHECK_OK(bd_run_open(root, "exp-1.a_b", true, &r));
    bd_run_close(r);
    text = slurp(path);
    CHECK(text && text[0] == '\0', "overwritten metrics.jsonl: %s", text ? text : "");
    free(text);
    CHECK(!has_file(ckpt, "step_7.bdc") && has_file(ckpt, "notes.txt"),
          "overwrite removes the checkpoints, and only them");
}

static void test_run_errors(void)
{
    bd_run *r = (bd_run *)&r;
    CHECK_FAILS(bd_run_open(root, "", false, &r), BD_E_ARG,
                "has 0 characters, expected 1 to 128");
    CHECK(r == NULL, "out not cleared on failure");
    CHECK_FAILS(bd_run_open(root, "..", false, &r), BD_E_ARG,
                "starts with '.'");
    CHECK_FAILS(bd_run_open(root, "a/b", false, &r), BD_E_ARG,
                "name 'a/b' has '/'");
    CHECK_FAILS(bd_run_open("/proc/bd-no-such/runs", "x", false, &r), BD_E_IO,
                "cannot create directory '/proc/bd-no-such'");
}

/* One writer per run folder: another process's lock names its pid; a
 * second open in this process says so; closing releases it. */
static void test_run_lock(void)
{
    int ready[2], done[2];
    if (pipe(ready) != 0 || pipe(done) != 0)
        return;
    pid_t child = fork();
    if (child == 0) {
        bd_run *held = NULL;
        char c = bd_run_open(root, "locked", false, &held) == BD_OK ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    char c = 'n', want[64];
    CHECK(read(ready[0], &c, 1) == 1 && c == 'y', "the child holds the run");
    bd_run *r = NULL;
    snprintf(want, sizeof want, "is in use by process %d (it holds", (int)child);
    CHECK_FAILS(bd_run_open(root, "locked", false, &r), BD_E_STATE, want);
    CHECK_FAILS(bd_run_open(root, "locked", true, &r), BD_E_STATE,
                "one writer per run folder");
    CHECK(write(done[1], "x", 1) == 1, "release the child");
    waitpid(child, NULL, 0);
    CHECK_OK(bd_run_open(root, "locked", false, &r)); /* released at its exit */
    bd_run *twice = NULL;
    CHECK_FAILS(bd_run_open(root, "locked", false, &twice), BD_E_STATE,
                ", this one: close the other bd.run of this folder first");
    bd_run_close(r);
    CHECK_OK(bd_run_open(root, "locked", false, &r));
    bd_run_close(r);
    close(ready[0]); close(ready[1]); close(done[0]); close(done[1]);
}

static const char *const HISTORY =
    "{\"step\":1,\"loss\":0.5}\n"
    "{\"config\":{\"step\":99},\"note\":\"\\\"step\\\":98\"}\n" /* nested, quoted */
    "{\"event\":\"step\",\"x\":[{\"step\":97}]}\n"
    "{\"time\":1.5,\"step\":3}\n"
    "{\"step\":5,\"loss\":0.25}\n"
    "{\"step\":4,\"late\":true}\n"
    "{\"step\":6,\"lo";                                     /* torn by a kill */

/* What a folder holds; resuming cuts metrics.jsonl back to the step
 * resumed from (lines without a step stay, a torn last line goes) and
 * continues it; a fresh start is refused where a training was. */
static void test_run_history(void)
{
    bd_run *r = NULL;
    char dir[300], ckpt[320];
    snprintf(dir, sizeof dir, "%s/history", root);
    CHECK_OK(bd_run_open(root, "history", false, &r));
    if (!r)
        return;
    CHECK_OK(bd_run_check_fresh(r));
    write_text(dir, "metrics.jsonl", "{\"note\":\"no step\"}\n{\"step\":0}\n");
    CHECK_OK(bd_run_check_fresh(r));
    write_text(dir, "metrics.jsonl", HISTORY);
    bd_run_history h;
    CHECK_OK(bd_run_history_of(r, &h));
    CHECK(h.lines == 7 && h.last_step == 6 && h.checkpoints == 0
          && h.last_checkpoint == -1, "history: %zu lines to step %lld, %zu"
          " checkpoints", h.lines, (long long)h.last_step, h.checkpoints);
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", dir);
    mkdir(ckpt, 0777);
    write_text(ckpt, "step_4.bdc", "x");
    CHECK_FAILS(bd_run_check_fresh(r), BD_E_STATE, "history' already holds a"
                " training (metrics.jsonl to step 6, 1 checkpoint(s) to step 4):"
                " resume = \"auto\" continues it, a run opened with overwrite ="
                " true starts it over");
    size_t dropped = 0;
    CHECK_OK(bd_run_rewind(r, 3, &dropped));
    CHECK(dropped == 3, "dropped %zu lines (steps 5, 4 and the torn one)", dropped);
    bd_json e;
    event(&e, 4, 0.125);
    CHECK_OK(bd_run_log(r, &e)); /* appends to the rewritten file */
    bd_json_free(&e);
    char path[400];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *text = slurp(path);
    const char *want =
        "{\"step\":1,\"loss\":0.5}\n"
        "{\"config\":{\"step\":99},\"note\":\"\\\"step\\\":98\"}\n"
        "{\"event\":\"step\",\"x\":[{\"step\":97}]}\n"
        "{\"time\":1.5,\"step\":3}\n"
        "{\"step\":4,\"loss\":0.125}\n";
    CHECK(text && strcmp(text, want) == 0, "rewound metrics.jsonl:\n%s", text ? text : "");
    free(text);
    CHECK_OK(bd_run_rewind(r, 4, &dropped));
    CHECK(dropped == 0, "nothing past step 4: %zu dropped", dropped);
    bd_run_close(r);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/bd-test-run-%d/nested/runs", (int)getpid());
    RUN(test_json);
    RUN(test_run_files);
    RUN(test_run_errors);
    RUN(test_run_lock);
    RUN(test_run_history);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf /tmp/bd-test-run-%d", (int)getpid());
    if (system(cmd) != 0)
        printf("could not remove /tmp/bd-test-run-%d\n", (int)getpid());
    return harness_summary();
}
