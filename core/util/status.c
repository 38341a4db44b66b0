/* Thread-local last-error message. */
#include "bd/status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

const char *bd_last_error(void) { return last_error; }

void bd_clear_error(void) { last_error[0] = '\0'; }

const char *bd_status_name(bd_status s)
{
    static const char *const names[BD_STATUS_COUNT] = {
        "ok", "bad argument", "out of memory", "i/o error",
        "bad format", "plugin error", "numeric error", "bad state",
    };
    return (unsigned)s < BD_STATUS_COUNT ? names[s] : "unknown status";
}

bd_status bd_fail(bd_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}
