#!/usr/bin/env python3
"""Adds N domains one vadddomain at a time to a scratch QMAILHOME and reports the cost per add:
total, mean of the first and the last 100, the slowest, and peak memory. Usage:
  domains.py BIN_DIR N [extra vadddomain options...]"""
import os
import resource
import subprocess
import sys
import tempfile
import time

bindir, n = sys.argv[1], int(sys.argv[2])
extra = sys.argv[3:]
home = tempfile.mkdtemp(prefix="qvmail-bench-domains.")
env = dict(os.environ, QMAILHOME=home)
for k in ("CONTROLDIR", "TCP_FILE", "ASSIGNDIR", "DOMAINDIR", "BASE_PATH"):
    env.pop(k, None)
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
print("domains added: %d in %.1f s (%.2f ms per add)" % (n, total, total / n * 1000))
print("mean of the first 100: %.2f ms; of the last 100: %.2f ms; ratio last/first: %.2f" % (first * 1000, last * 1000,
                                                                                          last / first))
print("slowest add: %.2f ms (add #%d); adds over 50 ms: %d" % (max(times) * 1000, times.index(max(times)) + 1,
                                                              sum(1 for t in times if t > 0.05)))
print("median %.2f ms, 99th percentile %.2f ms" % (ordered[len(ordered) // 2] * 1000, ordered[len(ordered) * 99 // 100] * 1000))
print("peak RSS of one vadddomain: %d KiB" % peak)
print("qmailctl check afterwards: %s" % check.stdout.decode().strip().splitlines()[-1])
