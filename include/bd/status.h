/* Errors: every fallible core function returns bd_status and, on failure,
 * leaves a message readable with bd_last_error(). The core never aborts or
 * exits on bad input; it reports and returns. */
#ifndef BD_STATUS_H
#define BD_STATUS_H

typedef enum bd_status {
    BD_OK = 0,
    BD_E_ARG,      /* bad argument: wrong shape, out of range, NULL */
    BD_E_NOMEM,    /* allocation failed or a size overflowed */
    BD_E_IO,       /* the file system failed */
    BD_E_FORMAT,   /* a file is corrupt or of an unknown version */
    BD_E_PLUGIN,   /* a plugin could not be loaded or misbehaved */
    BD_E_NUMERIC,  /* NaN or Inf where a finite number was required */
    BD_E_STATE,    /* call made in the wrong state (e.g. backward twice) */
    BD_STATUS_COUNT
} bd_status;

/* The message of the last failure on this thread ("" if none). */
const char *bd_last_error(void);

/* Short name of a status: "ok", "bad argument", ... */
const char *bd_status_name(bd_status s);

/* Record a failure and return it, so callers can write
 *     return bd_fail(BD_E_ARG, "conv2d: x has %d dims, expected 4", x->ndim); */
bd_status bd_fail(bd_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clear the message (used by tests and by code that recovers). */
void bd_clear_error(void);

/* Propagate a failure from a call that already set the message. */
#define BD_TRY(expr) do { bd_status bd_try_s_ = (expr); \
    if (bd_try_s_ != BD_OK) return bd_try_s_; } while (0)

#endif
