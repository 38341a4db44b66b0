/* Where plugins are found: the search path and folder scans. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bd/log.h"
#include "registry_impl.h"

bd_status bd_strings_push(bd_strings *s, const char *str)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        char **grown = realloc(s->items, (size_t)cap * sizeof *grown);
        if (!grown)
            return bd_fail(BD_E_NOMEM, "plugins: out of memory");
        s->items = grown;
        s->cap = cap;
    }
    char *copy = strdup(str);
    if (!copy)
        return bd_fail(BD_E_NOMEM, "plugins: out of memory");
    s->items[s->n++] = copy;
    return BD_OK;
}

void bd_strings_clear(bd_strings *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->items[i]);
    free(s->items);
    memset(s, 0, sizeof *s);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* bd_<anything>.so */
static bool is_plugin_file(const char *name)
{
    size_t n = strlen(name);
    return n > 6 && strncmp(name, "bd_", 3) == 0 && strcmp(name + n - 3, ".so") == 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

bd_status bd_plugin_files(const char *dir, bd_strings *names)
{
    DIR *d = opendir(dir);
    if (!d)
        return bd_fail(BD_E_IO, "plugins: cannot read folder '%s': %s", dir,
                       strerror(errno));
    bd_status s = BD_OK;
    for (struct dirent *e; s == BD_OK && (e = readdir(d));)
        if (is_plugin_file(e->d_name))
            s = bd_strings_push(names, e->d_name);
    closedir(d);
    if (names->n)
        qsort(names->items, (size_t)names->n, sizeof *names->items,
              compare_names);
    return s;
}

/* A failure of a scan: recorded for listings and messages, and said at
 * once, so that a skipped plugin (a shadowed name, a damaged file) never
 * goes unnoticed in a script run. */
static bd_status record_failure(void)
{
    bd_log_warn("%s; skipped", bd_last_error());
    return bd_strings_push(&bd_reg.failures, bd_last_error());
}

bd_status bd_plugin_load_dir(const char *dir, int *n_failed)
{
    bd_strings names = {0};
    bd_status s = bd_plugin_files(dir, &names);
    int failed = 0;
    for (int i = 0; s == BD_OK && i < names.n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names.items[i]);
        if (bd_plugin_load(path) != BD_OK) {
            failed++;
            s = record_failure();
        }
    }
    bd_strings_clear(&names);
    if (n_failed)
        *n_failed = failed;
    return s;
}

/* The build's plugin folder (or the installed one when the build's is
 * gone), then BD_PLUGIN_PATH. */
static bd_status add_default_dirs(void)
{
    if (bd_reg.have_defaults)
        return BD_OK;
    bd_reg.have_defaults = true;
    const char *own = BD_PLUGIN_BUILD_DIR;
#ifdef BD_PLUGIN_INSTALL_DIR
    if (!is_dir(own))
        own = BD_PLUGIN_INSTALL_DIR;
#endif
    BD_TRY(bd_strings_push(&bd_reg.search, own));
    const char *env = getenv("BD_PLUGIN_PATH");
    while (env && *env) {
        size_t len = strcspn(env, ":");
        if (len > 0) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%.*s", (int)len, env);
            BD_TRY(bd_strings_push(&bd_reg.search, dir));
        }
        env += len + (env[len] == ':');
    }
    return BD_OK;
}

bd_status bd_plugin_add_path(const char *dir)
{
    if (!dir || !is_dir(dir))
        return bd_fail(BD_E_IO, "plugins: folder '%s' does not exist",
                       dir ? dir : "(null)");
    BD_TRY(add_default_dirs());
    return bd_strings_push(&bd_reg.search, dir);
}

static bool in_search_path(const char *dir)
{
    for (int i = 0; i < bd_reg.search.n; i++)
        if (strcmp(bd_reg.search.items[i], dir) == 0)
            return true;
    return false;
}

/* The folder of a plugin file, resolved, into real (PATH_MAX bytes). */
static bool folder_of(const char *file, char *real)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    return realpath(slash ? (dir[0] ? dir : "/") : ".", real) != NULL;
}

bd_status bd_denoiser_load_from(const char *name, const char *dir)
{
    if (!name || !dir)
        return bd_fail(BD_E_ARG, "model: load from a folder needs a name and"
                       " a folder");
    char want[PATH_MAX], have[PATH_MAX];
    if (!is_dir(dir) || !realpath(dir, want))
        return bd_fail(BD_E_ARG, "model '%s': from = '%s' is not a folder",
                       name, dir);
    BD_TRY(add_default_dirs());
    if (!in_search_path(dir))
        BD_TRY(bd_strings_push(&bd_reg.search, dir));
    BD_TRY(bd_plugins_scan());
    int k = -1;
    for (int i = 0; i < bd_denoiser_count(); i++)
        if (strcmp(bd_denoiser_at(i)->name, name) == 0)
            k = i;
    if (k < 0) {
        bd_strings files = {0};
        bd_status s = bd_plugin_files(dir, &files);
        int n = files.n;
        bd_strings_clear(&files);
        BD_TRY(s);
        return bd_fail(BD_E_ARG, "model '%s': no plugin in folder '%s'"
                       " provides it (%d bd_*.so file%s there%s)", name, dir,
                       n, n == 1 ? "" : "s", bd_reg.failures.n
                       ? "; plugins that failed to load are listed by bdrun"
                         " plugins" : "");
    }
    if (!folder_of(bd_denoiser_path(k), have) || strcmp(have, want) != 0)
        return bd_fail(BD_E_ARG, "model '%s': from = '%s', but '%s' provides"
                       " it (a denoiser's name is never replaced: the first"
                       " plugin on the search path keeps it)", name, dir,
                       bd_denoiser_path(k));
    return BD_OK;
}

bd_status bd_plugins_scan(void)
{
    BD_TRY(add_default_dirs());
    while (bd_reg.n_scanned < bd_reg.search.n) {
        int i = bd_reg.n_scanned++;
        const char *dir = bd_reg.search.items[i];
        if (i == 0 && !is_dir(dir))
            continue; /* no plugins built (yet): not an error */
        if (bd_plugin_load_dir(dir, NULL) != BD_OK)
            BD_TRY(record_failure());
    }
    return BD_OK;
}

int bd_plugin_failure_count(void) { return bd_reg.failures.n; }

const char *bd_plugin_failure(int i)
{
    return i >= 0 && i < bd_reg.failures.n ? bd_reg.failures.items[i] : NULL;
}

int bd_plugin_search_count(void)
{
    return add_default_dirs() == BD_OK ? bd_reg.search.n : 0;
}

const char *bd_plugin_search_dir(int i)
{
    return i >= 0 && i < bd_reg.search.n ? bd_reg.search.items[i] : NULL;
}
