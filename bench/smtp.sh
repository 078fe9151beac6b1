#!/usr/bin/env bash
# Benchmark: mail intake over SMTP against Postfix, in the same run. Postfix's smtp-source sends
# MESSAGES 1 KB messages, one per connection, over SESSIONS parallel sessions to qmail-smtpd under
# tcpserver (with qmail-queued, and with qmail-queue writing alone) and to Postfix's smtpd with a
# scratch queue; ROUNDS rounds alternate between them. Reports messages/s and the ratio, flushes per
# message, peak memory per session, and qmail-smtpd's exec-to-QUIT time against /bin/cat's. As root
# (Postfix's master must be); configures nothing system-wide (Postfix runs from a scratch directory).
#   bench/smtp.sh [MESSAGES] [SESSIONS] [ROUNDS]     defaults 10000 20 3
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
# Postfix's package asks how to configure the host: answer "No configuration" (its scratch copy is ours)
if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'install ok installed'; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
fi
qv_install_packages "${QV_BUILD_PACKAGES[@]}" "${QV_BENCH_PACKAGES[@]}" postfix strace bsdutils
build=$QV_TOP/build-bench
qv_build "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
python3 "$QV_TOP/bench/smtp.py" "$build/bin" "${1:-10000}" "${2:-20}" "${3:-3}"
