#!/usr/bin/env python3
"""Adds N domains one vadddomain at a time to a scratch QMAILHOME and reports the cost per add:
total, mean of the first and the last 100, the slowest, and peak memory; the last line is the same
as JSON. Usage:
  domains.py BIN_DIR N [--mysql-socket PATH] [extra vadddomain options...]"""
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

bindir, n = sys.argv[1], int(sys.argv[2])
extra = sys.argv[3:]
socket_path = None
if extra[:1] == ["--mysql-socket"]:
    socket_path, extra = extra[1], extra[2:]
home = tempfile.mkdtemp(prefix="qvmail-bench-domains.")
env = dict(os.environ, QMAILHOME=home)
for k in ("CONTROLDIR", "TCP_FILE", "ASSIGNDIR", "DOMAINDIR", "BASE_PATH", "MYSQL_READ_DEFAULT_FILE",
          "MYSQL_READ_DEFAULT_GROUP"):
    env.pop(k, None)
backend = "files"
if socket_path:
    backend = "mysql"
    os.makedirs(os.path.join(home, "control"))
    with open(os.path.join(home, "control", "host.mysql"), "w") as f:
        f.write("localhost:qvmail:qvtest-password:%s\n" % socket_path)
    env["MYSQL_DATABASE"] = "bench_%d" % os.getpid()
times = []
start = time.perf_counter()
for i in range(n):
    t = time.perf_counter()
    p = subprocess.run([os.path.join(bindir, "vadddomain"), "d%05d.example.com" % i, "--password-stdin"] + extra,
                       input=b"bench-password\n", env=env, capture_output=True)
    times.append(time.perf_counter() - t)
    if p.returncode != 0:
        sys.exit("vadddomain failed at %d: %s" % (i, p.stderr.decode()))
total = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest vadddomain, before qmailctl check
check = subprocess.run([os.path.join(bindir, "qmailctl"), "check", "-q"], env=env, capture_output=True)
subprocess.run(["rm", "-rf", home])
first = sum(times[:100]) / min(100, len(times))
last = sum(times[-100:]) / min(100, len(times))
ordered = sorted(times)
summary = {
    "backend": backend, "domains": n, "total_s": round(total, 1), "mean_ms": round(total / n * 1000, 2),
    "first100_ms": round(first * 1000, 2), "last100_ms": round(last * 1000, 2), "ratio": round(last / first, 2),
    "median_ms": round(ordered[len(ordered) // 2] * 1000, 2),
    "p99_ms": round(ordered[len(ordered) * 99 // 100] * 1000, 2), "max_ms": round(max(times) * 1000, 2),
    "over_50ms": sum(1 for t in times if t > 0.05), "peak_rss_kib": peak,
    "check": check.stdout.decode().strip().splitlines()[-1] if check.stdout else check.stderr.decode().strip(),
}
print("[%s] domains added: %d in %.1f s (%.2f ms per add)" % (backend, n, total, total / n * 1000))
print("[%s] mean of the first 100: %.2f ms; of the last 100: %.2f ms; ratio last/first: %.2f" % (
    backend, first * 1000, last * 1000, last / first))
print("[%s] median %.2f ms, 99th percentile %.2f ms, slowest %.2f ms (add #%d); adds over 50 ms: %d" % (
    backend, summary["median_ms"], summary["p99_ms"], summary["max_ms"], times.index(max(times)) + 1,
    summary["over_50ms"]))
print("[%s] peak RSS of one vadddomain: %d KiB; qmailctl check afterwards: %s" % (backend, peak, summary["check"]))
print(json.dumps(summary))
