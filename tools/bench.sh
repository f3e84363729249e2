#!/usr/bin/env bash
# `make bench`: see bench/bench.sh.
exec "$(dirname "$0")/../bench/bench.sh" "$@"
