/* Run directories: config.json, metrics.jsonl, names, and the JSON text. */
#include "bd/run.h"
#include "harness.h"

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

    /* resume appends; a fresh open starts metrics.jsonl empty */
    CHECK_OK(bd_run_open(root, "exp-1.a_b", true, &r));
    CHECK_OK(bd_run_file(r, "metrics.jsonl", path, sizeof path));
    event(&e, 300, 0.125);
    CHECK_OK(bd_run_log(r, &e));
    bd_json_free(&e);
    bd_run_close(r);
    text = slurp(path);
    CHECK(text && strstr(text, "\"step\":100") && strstr(text, "\"step\":300"),
          "resumed metrics.jsonl: %s", text ? text : "(missing)");
    free(text);
    CHECK_OK(bd_run_open(root, "exp-1.a_b", false, &r));
    bd_run_close(r);
    text = slurp(path);
    CHECK(text && text[0] == '\0', "fresh metrics.jsonl: %s", text ? text : "");
    free(text);
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

int main(void)
{
    snprintf(root, sizeof root, "/tmp/bd-test-run-%d/nested/runs", (int)getpid());
    RUN(test_json);
    RUN(test_run_files);
    RUN(test_run_errors);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf /tmp/bd-test-run-%d", (int)getpid());
    if (system(cmd) != 0)
        printf("could not remove /tmp/bd-test-run-%d\n", (int)getpid());
    return harness_summary();
}
