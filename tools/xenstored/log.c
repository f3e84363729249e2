/* Logging: stderr in the foreground, syslog when daemonized. */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include "log.h"

static bool use_syslog;
static bool enabled = true;

void xsd_log_to_syslog(void)
{
    openlog("xlsnap-xenstored", LOG_PID, LOG_DAEMON);
    use_syslog = true;
}

void xsd_log_enable(bool on)
{
    enabled = on;
}

void xsd_log(const char *fmt, ...)
{
    va_list ap;
    if (!enabled)
        return;
    va_start(ap, fmt);
    if (use_syslog) {
        vsyslog(LOG_WARNING, fmt, ap);
    } else {
        fputs("xlsnap-xenstored: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
    va_end(ap);
}
