#!/usr/bin/env bash
# Benchmark: add N virtual domains (default 10,000) one vadddomain at a time, on the files store and
# on MariaDB (a private server started for the run), and report side by side the total, the mean cost
# of the first and the last 100 adds, the slowest add and peak memory.
#   bench/domains.sh [N] [files|mysql|both] [vadddomain options...]     e.g. bench/domains.sh 10000 both -O
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
n=${1:-10000}
which=${2:-both}
shift 2 || shift $#
qv_install_packages "${QV_BUILD_PACKAGES[@]}" python3 mariadb-server mariadb-client
build=$QV_TOP/build-bench
qv_build "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null

results=$(mktemp)
trap 'rm -f "$results"; [ -n "${db:-}" ] && "$QV_TOP/scripts/mariadb-fixture" stop "$db"' EXIT
if [ "$which" = files ] || [ "$which" = both ]; then
    python3 "$QV_TOP/bench/domains.py" "$build/bin" "$n" "$@" | tee -a "$results"
fi
if [ "$which" = mysql ] || [ "$which" = both ]; then
    db=$(mktemp -d /tmp/qvmail-bench-mariadb.XXXXXX)
    "$QV_TOP/scripts/mariadb-fixture" start "$db" >/dev/null
    python3 "$QV_TOP/bench/domains.py" "$build/bin" "$n" --mysql-socket "$(cat "$db/socket")" "$@" | tee -a "$results"
fi
python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
if len(rows) < 2:
    sys.exit(0)
keys = ["total_s", "mean_ms", "first100_ms", "last100_ms", "ratio", "median_ms", "p99_ms", "max_ms", "over_50ms",
        "peak_rss_kib"]
print("\n%-14s" % "" + "".join("%12s" % r["backend"] for r in rows))
for k in keys:
    print("%-14s" % k + "".join("%12s" % r[k] for r in rows))
PY
