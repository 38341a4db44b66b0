/* Whole-file reads and atomic writes: a temporary file in the target's
 * folder (<path>.tmp-<pid>-<counter>: unique to the process and the write),
 * fsync, rename over the target, fsync the folder. */
#include "format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bd_status bd_atomic_open(bd_atomic *f, const char *path)
{
    *f = (bd_atomic){.fd = -1};
    size_t n = strlen(path) + 32;
    f->path = strdup(path);
    f->tmp = malloc(n);
    if (!f->path || !f->tmp) {
        bd_atomic_abort(f);
        return bd_fail(BD_E_NOMEM, "write '%s': out of memory", path);
    }
    static _Atomic unsigned counter; /* two writes of one path never share */
    snprintf(f->tmp, n, "%s.tmp-%ld-%u", path, (long)getpid(), counter++);
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int err = errno;
        bd_status s = bd_fail(BD_E_IO, "write '%s': cannot create '%s': %s",
                              path, f->tmp, strerror(err));
        free(f->tmp);
        f->tmp = NULL;  /* nothing to remove */
        bd_atomic_abort(f);
        return s;
    }
    return BD_OK;
}

bd_status bd_atomic_pwrite(bd_atomic *f, const void *p, size_t n, uint64_t at)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = pwrite(f->fd, b, n, (off_t)at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return bd_fail(BD_E_IO, "write '%s': writing '%s' at offset %llu:"
                           " %s", f->path, f->tmp, (unsigned long long)at,
                           w < 0 ? strerror(errno) : "no progress");
        b += w;
        n -= (size_t)w;
        at += (uint64_t)w;
    }
    return BD_OK;
}

bd_status bd_atomic_write(bd_atomic *f, const void *p, size_t n)
{
    BD_TRY(bd_atomic_pwrite(f, p, n, f->size));
    f->size += n;
    return BD_OK;
}

void bd_atomic_abort(bd_atomic *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->tmp)
        unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    *f = (bd_atomic){.fd = -1};
}

/* fsync the folder holding path, so the rename itself is durable. */
static bd_status sync_folder(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path))
                      : strdup(".");
    if (!dir)
        return bd_fail(BD_E_NOMEM, "write '%s': out of memory", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bd_status s = BD_OK;
    if (fd < 0 || fsync(fd) != 0)
        s = bd_fail(BD_E_IO, "write '%s': cannot sync folder '%s': %s", path,
                    dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(dir);
    return s;
}

bd_status bd_atomic_commit(bd_atomic *f)
{
    bd_status s = BD_OK;
    if (fsync(f->fd) != 0)
        s = bd_fail(BD_E_IO, "write '%s': fsync of '%s': %s", f->path, f->tmp,
                    strerror(errno));
    if (close(f->fd) != 0 && s == BD_OK)
        s = bd_fail(BD_E_IO, "write '%s': close of '%s': %s", f->path, f->tmp,
                    strerror(errno));
    f->fd = -1;
    if (s == BD_OK && rename(f->tmp, f->path) != 0)
        s = bd_fail(BD_E_IO, "write '%s': rename from '%s': %s", f->path,
                    f->tmp, strerror(errno));
    if (s != BD_OK) {
        bd_atomic_abort(f);
        return s;
    }
    s = sync_folder(f->path);
    free(f->tmp);
    free(f->path);
    *f = (bd_atomic){.fd = -1};
    return s;
}

bd_status bd_write_file_atomic(const char *path, const void *p, size_t n)
{
    bd_atomic f;
    BD_TRY(bd_atomic_open(&f, path));
    bd_status s = bd_atomic_pwrite(&f, p, n, 0);
    if (s != BD_OK) {
        bd_atomic_abort(&f);
        return s;
    }
    return bd_atomic_commit(&f);
}

bd_status bd_pread_exact(int fd, void *p, size_t n, uint64_t at,
                         const char *path)
{
    uint8_t *b = p;
    while (n) {
        ssize_t r = pread(fd, b, n, (off_t)at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return bd_fail(BD_E_IO, "read '%s' at offset %llu: %s", path,
                           (unsigned long long)at, strerror(errno));
        if (r == 0)
            return bd_fail(BD_E_IO, "read '%s': file ended at offset %llu"
                           " (it changed while being read?)", path,
                           (unsigned long long)at);
        b += r;
        n -= (size_t)r;
        at += (uint64_t)r;
    }
    return BD_OK;
}

bd_status bd_read_file(const char *path, uint8_t **bytes, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bd_fail(BD_E_IO, "read '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        bd_status s = bd_fail(BD_E_IO, "read '%s': not a regular file", path);
        close(fd);
        return s;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    bd_status s = buf ? bd_pread_exact(fd, buf, n, 0, path)
                      : bd_fail(BD_E_NOMEM, "read '%s': cannot allocate %zu bytes",
                                path, n);
    close(fd);
    if (s != BD_OK) {
        free(buf);
        return s;
    }
    *bytes = buf;
    *len = n;
    return BD_OK;
}
