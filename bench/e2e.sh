#!/usr/bin/env bash
# Benchmark: mail end to end against Postfix, in the same run. Postfix's smtp-source sends MESSAGES 1 KB
# messages, one per connection, over SESSIONS parallel sessions to a virtual mailbox: qmail-smtpd under
# tcpserver with qmail-queued, then qmail-send delivering into the Maildir; and Postfix's smtpd, qmgr and
# virtual(8) into a virtual Maildir. Measures from the first connection until the last message is in its
# Maildir; ROUNDS rounds alternate. Reports messages/s and the ratio, peak memory, and the flushes one
# message costs qvmail. As root (Postfix's master must be); configures nothing system-wide.
#   bench/e2e.sh [MESSAGES] [SESSIONS] [ROUNDS]     defaults 20000 20 3
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
# Postfix's package asks how to configure the host: answer "No configuration" (its scratch copy is ours)
if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'install ok installed'; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
fi
qv_install_packages "${QV_BUILD_PACKAGES[@]}" "${QV_BENCH_PACKAGES[@]}" postfix bsdutils
build=$QV_TOP/build-bench
qv_build "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
python3 "$QV_TOP/bench/e2e.py" "$build/bin" "${1:-20000}" "${2:-20}" "${3:-3}"
