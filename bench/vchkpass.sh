#!/usr/bin/env bash
# Benchmark: vchkpass for a wrong password against an unknown mailbox or domain (files store): the
# medians should be the same, so that response time does not reveal which addresses exist; and a right
# password with and without the login record (lastauth).
#   bench/vchkpass.sh [N]        default 300 logins of each kind
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
qv_install_packages "${QV_BUILD_PACKAGES[@]}" python3
build=$QV_TOP/build-bench
qv_build "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
python3 "$QV_TOP/bench/vchkpass.py" "$build/bin" "${1:-300}"
