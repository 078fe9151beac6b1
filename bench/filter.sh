#!/usr/bin/env bash
# Benchmark: the mail filter engine. In one process (qv_filter_bench): 100 rules applied to 10,000
# varied messages, messages per second, cost per message and per rule, and 10 KB messages against the
# target of 1 ms. Then one process per message, as at delivery: vcfilter --test with the same 100 rules
# (files store) against procmail with the same rules as recipes, medians and their ratio.
#   bench/filter.sh [MESSAGES] [RULES] [PROCESS_RUNS]     defaults 10000 100 500
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
qv_install_packages "${QV_BUILD_PACKAGES[@]}" "${QV_BENCH_PACKAGES[@]}"
build=$QV_TOP/build-bench
qv_build "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
out=$(mktemp -d /tmp/qvbench-filter.XXXXXX)
trap 'rm -rf "$out"' EXIT
"$build/bin/qv_filter_bench" "${1:-10000}" "${2:-100}" "$out"
python3 "$QV_TOP/bench/filter.py" "$build/bin" "$out" "${3:-500}"
