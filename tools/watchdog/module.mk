# The freeze watchdog helper libsnap starts with posix_spawn (libsnap/snap_watchdog.h),
# installed to $(LIBEXECDIR)/xlsnap/ (libsnap's default path: see the top Makefile).
PROGRAMS += xlsnap-freeze-watchdog
xlsnap-freeze-watchdog_SRCS := tools/watchdog/xlsnap-freeze-watchdog.c
xlsnap-freeze-watchdog_LIBS := libsnap
INSTALL_LIBEXEC += xlsnap-freeze-watchdog
