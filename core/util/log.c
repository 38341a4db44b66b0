/* Timestamped log lines on stderr. Info lines come from the writer only
 * (bd_dist_is_writer: rank 0); warnings from every rank. */
#include "bd/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "bd/dist.h"

static bool open_line; /* a progress line is drawn in place on stderr */

void bd_log_set_open_line(bool open) { open_line = open; }

void bd_log_clear_line(void)
{
    if (open_line) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        open_line = false;
    }
}

double bd_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void log_line(const char *level, const char *fmt, va_list ap)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    bd_log_clear_line();
    fprintf(stderr, "[%02d:%02d:%02d] %s", tm.tm_hour, tm.tm_min, tm.tm_sec,
            level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
}

void bd_log_info(const char *fmt, ...)
{
    if (!bd_dist_is_writer())
        return;
    va_list ap;
    va_start(ap, fmt);
    log_line("", fmt, ap);
    va_end(ap);
}

void bd_log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("warning: ", fmt, ap);
    va_end(ap);
}
