/* A run's checkpoints: <run_dir>/ckpt/step_<N>.bdc, packed in step order. */
#include "format.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct step_file {
    uint64_t step;
    char    *path;
} step_file;

/* N of "step_<N>.bdc" (1 to 19 digits), or false for any other name. */
static bool parse_step(const char *name, uint64_t *step)
{
    size_t len = strlen(name), digits = len - 9;
    if (len < 10 || len > 28 || strncmp(name, "step_", 5) != 0
        || strcmp(name + len - 4, ".bdc") != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < digits; i++) {
        char ch = name[5 + i];
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (uint64_t)(ch - '0');
    }
    *step = v;
    return true;
}

static int by_step(const void *a, const void *b)
{
    uint64_t x = ((const step_file *)a)->step, y = ((const step_file *)b)->step;
    return (x > y) - (x < y);
}

static void free_files(step_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(f[i].path);
    free(f);
}

/* The step_<N>.bdc files of dir, sorted by step. */
static bd_status list_steps(const char *dir, step_file **out, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return bd_fail(BD_E_IO, "archive: cannot list '%s': %s", dir,
                       strerror(errno));
    step_file *files = NULL;
    size_t n = 0, cap = 0;
    bd_status s = BD_OK;
    struct dirent *e;
    while (s == BD_OK && (e = readdir(d))) {
        uint64_t step;
        if (!parse_step(e->d_name, &step))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            step_file *grown = realloc(files, cap * sizeof *grown);
            if (!grown) {
                s = bd_fail(BD_E_NOMEM, "archive: out of memory listing '%s'", dir);
                break;
            }
            files = grown;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        files[n].step = step;
        files[n].path = malloc(len);
        if (!files[n].path)
            s = bd_fail(BD_E_NOMEM, "archive: out of memory listing '%s'", dir);
        else
            snprintf(files[n++].path, len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (s == BD_OK && n == 0)
        s = bd_fail(BD_E_ARG, "archive: no checkpoints named step_<N>.bdc in"
                    " '%s'", dir);
    if (s == BD_OK)
        qsort(files, n, sizeof *files, by_step);
    for (size_t i = 1; s == BD_OK && i < n; i++)
        if (files[i].step == files[i - 1].step)
            s = bd_fail(BD_E_ARG, "archive: two checkpoints of step %llu ('%s'"
                        " and '%s')", (unsigned long long)files[i].step,
                        files[i - 1].path, files[i].path);
    if (s != BD_OK) {
        free_files(files, n);
        return s;
    }
    *out = files;
    *count = n;
    return BD_OK;
}

bd_status bd_archive_create(const char *run_dir, const char *out,
                            const bd_archive_opts *opts)
{
    size_t len = strlen(run_dir) + 6, n = 0;
    char *dir = malloc(len);
    if (!dir)
        return bd_fail(BD_E_NOMEM, "archive: out of memory");
    snprintf(dir, len, "%s/ckpt", run_dir);
    step_file *files = NULL;
    bd_status s = list_steps(dir, &files, &n);
    free(dir);
    BD_TRY(s);
    const char **paths = malloc(n * sizeof *paths);
    uint64_t *steps = malloc(n * sizeof *steps);
    if (!paths || !steps)
        s = bd_fail(BD_E_NOMEM, "archive: out of memory");
    for (size_t i = 0; s == BD_OK && i < n; i++) {
        paths[i] = files[i].path;
        steps[i] = files[i].step;
    }
    if (s == BD_OK)
        s = bd_archive_write(out, paths, steps, n, opts);
    free(paths);
    free(steps);
    free_files(files, n);
    return s;
}
