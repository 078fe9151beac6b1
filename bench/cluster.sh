#!/usr/bin/env bash
# Benchmark: mailbox adds (vadduser) and logins (vchkpass) per second on the MariaDB store, through one
# server, through one node of a three-node Galera cluster, and through two nodes at once (two hosts), side
# by side with one server shared by two hosts; prints the ratios. Servers are private, on loopback.
#   bench/cluster.sh [ADDS] [LOGINS]     per host; default 300 adds and 600 logins
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
qv_install_packages "${QV_BUILD_PACKAGES[@]}" python3 mariadb-server mariadb-client galera-4 rsync
build=$QV_TOP/build-bench
qv_build "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null

single=$(mktemp -d /tmp/qvmail-bench-mariadb.XXXXXX)
galera=$(mktemp -d /tmp/qvmail-bench-galera.XXXXXX)
chmod 755 "$galera"
trap '"$QV_TOP/scripts/mariadb-fixture" stop "$single" >/dev/null 2>&1 || true
      "$QV_TOP/scripts/galera-fixture" stop "$galera" >/dev/null 2>&1 || true' EXIT
"$QV_TOP/scripts/mariadb-fixture" start "$single" >/dev/null
"$QV_TOP/scripts/galera-fixture" start "$galera" >/dev/null
python3 "$QV_TOP/bench/cluster.py" "$build/bin" "${1:-300}" "${2:-600}" \
    "$(cat "$single/socket")" "$(cat "$galera/node1/socket")" "$(cat "$galera/node2/socket")"
