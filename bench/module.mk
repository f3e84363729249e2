# bench: helpers of `make bench` (tools/bench.sh -> bench/bench.sh).
# Built with `make all` so the benchmark needs no build of its own; never run
# by `make check`.
PROGRAMS += bench_run bench_genmeta bench_report bench_migrate
bench_run_SRCS := bench/bench_run.c
bench_run_LIBS :=
bench_genmeta_SRCS := bench/bench_genmeta.c
bench_genmeta_LIBS := libsnap
bench_report_SRCS := bench/bench_report.c
bench_report_LIBS := libsnap
bench_migrate_SRCS := bench/bench_migrate.c
bench_migrate_LIBS := libsnap
