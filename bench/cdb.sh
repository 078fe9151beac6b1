#!/usr/bin/env bash
# Benchmark: qmailctl cdb against ucspi-tcp's tcprules on the same generated tcp.smtp
# (default one million rules). Runs each tool several times, alternating, and reports the best wall
# time and the peak resident memory of each, and their ratios (qmailctl / tcprules). Never fails on
# speed; it fails only if the two cdbs differ.
#   bench/cdb.sh [RULES] [RUNS]
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
rules=${1:-1000000}
runs=${2:-5}

qv_install_packages "${QV_BUILD_PACKAGES[@]}" "${QV_BENCH_PACKAGES[@]}"
build=$QV_TOP/build-bench
qv_build "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null

work=$(mktemp -d /tmp/qvmail-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/etc"
python3 "$QV_TOP/bench/gen_rules.py" "$rules" > "$work/etc/tcp.smtp"
cat "$work/etc/tcp.smtp" > /dev/null  # warm the page cache for both
printf 'input: %s rules, %s bytes\n' "$rules" "$(stat -c %s "$work/etc/tcp.smtp")"

measure() {  # prints "seconds kilobytes"
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" > /dev/null
    cat "$work/time"
}
best_t=() best_q=()
for i in $(seq "$runs"); do
    t=$(measure sh -c "exec tcprules '$work/ref.cdb' '$work/ref.tmp' < '$work/etc/tcp.smtp'")
    q=$(measure env QMAILHOME="$work" "$build/bin/qmailctl" cdb --force -q tcp.smtp)
    best_t+=("$t") best_q+=("$q")
done
cmp "$work/ref.cdb" "$work/etc/tcp.smtp.cdb" || { echo "cdb files differ" >&2; exit 1; }
records=$(env QMAILHOME="$work" "$build/bin/qmailctl" cdb --check --json tcp.smtp | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')

python3 - "$records" "${best_t[@]}" -- "${best_q[@]}" <<'PY'
import sys
args = sys.argv[1:]
records = int(args[0])
sep = args.index("--")
t = [tuple(map(float, x.split())) for x in args[1:sep]]
q = [tuple(map(float, x.split())) for x in args[sep + 1:]]
tt, tm = min(x[0] for x in t), max(x[1] for x in t)
qt, qm = min(x[0] for x in q), max(x[1] for x in q)
print("records: %d; identical output: yes; best of %d runs each" % (records, len(t)))
print("%-10s %10s %14s" % ("tool", "seconds", "peak RSS KiB"))
print("%-10s %10.2f %14d" % ("tcprules", tt, tm))
print("%-10s %10.2f %14d" % ("qmailctl", qt, qm))
print("ratio qmailctl/tcprules: time %.2f, memory %.2f" % (qt / tt if tt else float("nan"), qm / tm))
PY
