#!/usr/bin/env bash
# Benchmark: clearopensmtp against one plain DELETE of the same stale relay rows on a private MariaDB,
# with a concurrent client doing CHECKRELAY lookups during each (their p50/p99 latency is reported).
#   bench/clearopensmtp.sh [ROWS] [ROUNDS]        default: 1,000,000 rows (half stale), 1 round
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
rows=${1:-1000000}
rounds=${2:-1}
qv_install_packages "${QV_BUILD_PACKAGES[@]}" python3 mariadb-server mariadb-client
build=$QV_TOP/build-bench
qv_build "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
db=$(mktemp -d /tmp/qvmail-bench-mariadb.XXXXXX)
trap '"$QV_TOP/scripts/mariadb-fixture" stop "$db" >/dev/null 2>&1 || true; rm -rf "$db"' EXIT
# a production-like server: the table and its indexes fit in memory, every commit is flushed
QV_MARIADB_OPTS="--innodb-buffer-pool-size=1G --innodb-log-file-size=512M --innodb-flush-log-at-trx-commit=1" \
    "$QV_TOP/scripts/mariadb-fixture" start "$db" >/dev/null
python3 "$QV_TOP/bench/clearopensmtp.py" "$build/bin" "$(cat "$db/socket")" "$rows" "$rounds"
