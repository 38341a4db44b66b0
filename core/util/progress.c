/* The progress line: step/total, loss, it/s, ETA; drawn by the writer only
 * (bd_dist_is_writer: rank 0). */
#include "bd/log.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bd/dist.h"

#define REDRAW_SECONDS 0.1

bool bd_progress_stderr_is_tty(void) { return isatty(STDERR_FILENO) == 1; }

void bd_progress_start(bd_progress *p, const char *what, int64_t first,
                       int64_t total, bool tty)
{
    memset(p, 0, sizeof *p);
    snprintf(p->what, sizeof p->what, "%s", what);
    p->total = total > 0 ? total : 1;
    p->first = p->step = first;
    p->loss = NAN;
    p->start = p->last_draw = bd_time();
    p->interval = 10.0;
    p->tty = tty;
}

/* "7m38s", "1h02m", "12s" into buf. */
static void format_duration(double s, char *buf, int len)
{
    if (!isfinite(s) || s < 0) {
        snprintf(buf, (size_t)len, "?");
        return;
    }
    long v = lround(s);
    if (v >= 3600)
        snprintf(buf, (size_t)len, "%ldh%02ldm", v / 3600, v % 3600 / 60);
    else if (v >= 60)
        snprintf(buf, (size_t)len, "%ldm%02lds", v / 60, v % 60);
    else
        snprintf(buf, (size_t)len, "%lds", v);
}

const char *bd_progress_format(const bd_progress *p, char *buf, int len)
{
    double elapsed = bd_time() - p->start;
    double rate = elapsed > 0 ? (double)(p->step - p->first) / elapsed : 0.0;
    char eta[32], took[32], loss[32] = "";
    format_duration(rate > 0 ? (double)(p->total - p->step) / rate : NAN, eta,
                    sizeof eta);
    format_duration(elapsed, took, sizeof took);
    if (!isnan(p->loss))
        snprintf(loss, sizeof loss, "  loss %.4g", p->loss);
    snprintf(buf, (size_t)len, "%s %lld/%lld%s  %.3g it/s  %s %s", p->what,
             (long long)p->step, (long long)p->total, loss, rate,
             p->step >= p->total ? "took" : "ETA",
             p->step >= p->total ? took : eta);
    return buf;
}

static void draw(bd_progress *p, bool final)
{
    if (!bd_dist_is_writer())
        return;
    char line[160];
    bd_progress_format(p, line, sizeof line);
    if (p->tty) {
        fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
        bd_log_set_open_line(!final);
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
    p->last_draw = bd_time();
}

void bd_progress_update(bd_progress *p, int64_t step, double loss)
{
    p->step = step;
    p->loss = loss;
    double due = p->tty ? REDRAW_SECONDS : p->interval;
    if (bd_time() - p->last_draw >= due)
        draw(p, false);
}

void bd_progress_finish(bd_progress *p)
{
    draw(p, true);
}
