/* Logging: one line per problem, to stderr or (once daemonized) syslog. */
#ifndef XSD_LOG_H
#define XSD_LOG_H

#include <stdbool.h>

void xsd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Switches logging to syslog (after daemonizing). */
void xsd_log_to_syslog(void);
/* CONTROL log on|off. */
void xsd_log_enable(bool on);

#endif
