/* Logging and the progress line.
 *
 * Log lines go to stderr with a wall-clock timestamp: "[14:03:27] message".
 * A progress line shows step/total, loss, it/s and the ETA of long work. On
 * a terminal it is redrawn in place with '\r' (at most every 0.1 s) and log
 * lines printed meanwhile clear it first; elsewhere (a file, a pipe, CI) it
 * prints a plain line every `interval` seconds and one at the end. */
#ifndef BD_LOG_H
#define BD_LOG_H

#include <stdbool.h>
#include <stdint.h>

void bd_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bd_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic seconds since an arbitrary origin. */
double bd_time(void);

typedef struct bd_progress {
    char    what[32];   /* "train", "sample" */
    int64_t total;      /* steps to do (> 0) */
    int64_t first;      /* steps done at start (a resumed run) */
    int64_t step;       /* steps done */
    double  loss;       /* last loss, NaN if none */
    double  start;      /* bd_time() at start */
    double  last_draw;  /* bd_time() of the last line drawn */
    double  interval;   /* seconds between plain lines (default 10) */
    bool    tty;        /* redraw in place */
} bd_progress;

/* Start a progress line for steps first..total (first > 0 when resuming;
 * it/s and the ETA count from there); tty decides redraw in place (pass
 * bd_progress_stderr_is_tty() for the usual behaviour). */
void bd_progress_start(bd_progress *p, const char *what, int64_t first,
                       int64_t total, bool tty);
bool bd_progress_stderr_is_tty(void);

/* Record that `step` steps are done with this loss (NaN: no loss) and draw
 * the line when it is due. */
void bd_progress_update(bd_progress *p, int64_t step, double loss);

/* Draw the final line and end it with a newline. */
void bd_progress_finish(bd_progress *p);

/* The line as it would be drawn now: "train 120/2000  loss 0.0412
 * 4.1 it/s  ETA 7m38s". Returns buf. */
const char *bd_progress_format(const bd_progress *p, char *buf, int len);

/* For progress.c: a line is being redrawn in place on stderr, so a log
 * line must erase it first. */
void bd_log_set_open_line(bool open);
/* Erase such a line now (before other output, e.g. a script's print); the
 * progress line draws itself again at its next update. */
void bd_log_clear_line(void);

#endif
