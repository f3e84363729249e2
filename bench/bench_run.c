/*
 * bench_run: runs one command as a fresh process and prints what a user
 * feels: its wall time and its peak resident set size.
 *
 *   bench_run [-o OUT] [-t TRACE] -- COMMAND [ARG...]
 *
 * prints "<wall_ms> <maxrss_kb> <exit status> <cpu_ms>" on stdout (cpu: user +
 * system time, steadier than wall time on a busy machine); the command's own
 * stdout and stderr go to OUT (default /dev/null). The peak RSS comes from
 * wait4(): the largest of the command and of the children it waited for.
 * With -t, "spawn <ns>" (before the fork) and "reaped <ns>" (after wait4)
 * are appended to TRACE, CLOCK_MONOTONIC like XLSNAP_TRACE's events: the
 * process's start-up and exit costs become phases of its trace.
 *
 * Copyright (C) 2026 The xlsnap authors. GPL-2.0-only (see COPYING).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void trace_event(const char *path, const char *event)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    FILE *f = path ? fopen(path, "a") : NULL;
    if (!f)
        return;
    fprintf(f, "%s %llu\n", event,
            (unsigned long long)ts.tv_sec * 1000000000ull +
                (unsigned long long)ts.tv_nsec);
    fclose(f);
}

static void child(const char *out, char **argv)
{
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
        fprintf(stderr, "bench_run: %s: %s\n", out, strerror(errno));
        _exit(126);
    }
    execvp(argv[0], argv);
    fprintf(stderr, "bench_run: %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int main(int argc, char **argv)
{
    const char *out = "/dev/null", *trace = NULL;
    int i = 1;
    while (i + 1 < argc && (!strcmp(argv[i], "-o") || !strcmp(argv[i], "-t"))) {
        if (argv[i][1] == 'o')
            out = argv[i + 1];
        else
            trace = argv[i + 1];
        i += 2;
    }
    if (i < argc && !strcmp(argv[i], "--"))
        i++;
    if (i >= argc) {
        fprintf(stderr, "usage: bench_run [-o OUT] [-t TRACE] -- COMMAND [ARG...]\n");
        return 2;
    }
    trace_event(trace, "spawn");
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench_run: fork");
        return 1;
    }
    if (pid == 0)
        child(out, argv + i);
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR) {
            perror("bench_run: wait4");
            return 1;
        }
    double wall = now_ms() - t0;
    trace_event(trace, "reaped");
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    printf("%.3f %ld %d %.3f\n", wall, ru.ru_maxrss, code, cpu);
    return 0;
}
