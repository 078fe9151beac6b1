#!/usr/bin/env bash
# Benchmark: add N virtual domains (default 10,000) one vadddomain at a time and report the total,
# the mean cost of the first and the last 100 adds, the slowest add and peak memory. The cost of an
# add should not grow with the number of domains beyond rewriting the control files it touches.
#   bench/domains.sh [N] [vadddomain options...]     e.g. bench/domains.sh 10000 -O
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
n=${1:-10000}
shift || true
qv_install_packages "${QV_BUILD_PACKAGES[@]}" python3
build=$QV_TOP/build-bench
qv_build "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
python3 "$QV_TOP/bench/domains.py" "$build/bin" "$n" "$@"
