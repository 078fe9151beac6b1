"""Driver for bench/filter.sh: one process per message, as at delivery. vcfilter --test applies the
rules of rules.tsv (added with vcfilter -i to a scratch files store) to each message; procmail applies
the same rules written as recipes (procmailrc). No rule matches, so both try every rule. Medians of N
runs each, interleaved, and their ratio.
    python3 bench/filter.py BIN_DIR OUT_DIR [N]"""
import os
import shutil
import statistics
import subprocess
import sys
import time

import scratch

bindir, outdir = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 500
home, env = scratch.scratch_home("qvbench-filter.")


def run(*args):
    p = scratch.run(bindir, env, *args)
    assert p.returncode == 0, (args, p.stderr)


run("vadddomain", "example.com", "-r", "12")
run("vadduser", "joe@example.com", "-r", "12")
rules = 0
with open(os.path.join(outdir, "rules.tsv")) as f:
    for line in f:
        name, header, comparison, keyword, folder = line.rstrip("\n").split("\t")
        args = ["vcfilter", "-i", "-t", name, "-c", comparison, "-f", folder]
        if header != "-":
            args += ["-h", header, "-k", keyword]
        run(*(args + ["joe@example.com"]))
        rules += 1

msgdir = os.path.join(outdir, "msg")
messages = sorted(os.listdir(msgdir))
vcfilter = os.path.join(bindir, "vcfilter")
procmail = shutil.which("procmail")
rc = os.path.join(outdir, "procmailrc")
pm_env = dict(env, HOME=home, LOGNAME="root")
times = {"vcfilter --test": [], "procmail": [], "(true)": []}
for i in range(n):
    path = os.path.join(msgdir, messages[i % len(messages)])
    with open(path, "rb") as f:
        data = f.read()
    t = time.perf_counter()
    p = subprocess.run([vcfilter, "--test", "--message", path, "joe@example.com"], env=env, capture_output=True)
    times["vcfilter --test"].append((time.perf_counter() - t) * 1000)
    assert p.returncode == 1, p.stdout + p.stderr  # no rule matches
    t = time.perf_counter()
    p = subprocess.run([procmail, "-p", "-m", rc], env=pm_env, input=data, capture_output=True)
    times["procmail"].append((time.perf_counter() - t) * 1000)
    assert p.returncode == 0, p.stderr
    t = time.perf_counter()
    subprocess.run(["true"], capture_output=True)
    times["(true)"].append((time.perf_counter() - t) * 1000)

print("one process per message: %d rules, %d runs each over %d messages (files store)" % (rules, n, len(messages)))
print("%-18s %10s %10s %10s" % ("", "median ms", "p90 ms", "min ms"))
for label, ts in times.items():
    ts.sort()
    print("%-18s %10.2f %10.2f %10.2f" % (label, statistics.median(ts), ts[int(0.9 * len(ts))], ts[0]))
print("vcfilter --test / procmail (medians): %.2f" %
      (statistics.median(times["vcfilter --test"]) / statistics.median(times["procmail"])))
shutil.rmtree(home)
