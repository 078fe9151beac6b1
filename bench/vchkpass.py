"""Driver for bench/vchkpass.sh: the time vchkpass takes for a wrong password of an existing mailbox
against an unknown mailbox (and an unknown domain), so that response time does not tell which
addresses exist; and what recording a login (lastauth) costs a right one. Medians of N runs each,
interleaved.
    python3 bench/vchkpass.py BIN_DIR [N]"""
import os
import shutil
import statistics
import subprocess
import sys
import time

import scratch

bindir = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
home, env = scratch.scratch_home("qvbench-vchkpass.")


def run(*args, data=None):
    return scratch.run(bindir, env, *args, data=data)


assert run("vadddomain", "example.com", "-r", "12").returncode == 0
assert run("vadduser", "joe@example.com", "--password-stdin", data=b"joe-password\n").returncode == 0
cases = {
    "right password": b"joe@example.com\0joe-password\0\0",
    "right, NOLASTAUTH": b"joe@example.com\0joe-password\0\0",
    "wrong password": b"joe@example.com\0not-the-password\0\0",
    "unknown mailbox": b"nobody@example.com\0not-the-password\0\0",
    "unknown domain": b"joe@nowhere.example\0not-the-password\0\0",
}
expect = {"right password": 0, "right, NOLASTAUTH": 0, "wrong password": 1, "unknown mailbox": 1, "unknown domain": 1}
# a verified login is recorded (lastauth: <home>/lastauth with files) unless NOLASTAUTH is set
case_env = {label: dict(env, TCPREMOTEIP="192.0.2.9") for label in cases}
case_env["right, NOLASTAUTH"]["NOLASTAUTH"] = "1"
times = {k: [] for k in cases}
vchkpass = os.path.join(bindir, "vchkpass")
for i in range(n):
    for label, data in cases.items():
        r, w = os.pipe()
        os.write(w, data)
        os.close(w)
        r4 = os.dup2(r, 4) if r != 4 else r
        t = time.perf_counter()
        p = subprocess.run(["sh", "-c", 'exec "$@" 3<&4 4<&-', "sh", vchkpass], env=case_env[label], pass_fds=(4,),
                           capture_output=True)
        times[label].append((time.perf_counter() - t) * 1000)
        os.close(r)
        if r4 != r:
            os.close(r4)
        assert p.returncode == expect[label], (label, p.returncode, p.stderr)
# the shell that puts the login on descriptor 3 costs the same in every case; measure it alone too
shell = []
for i in range(n):
    t = time.perf_counter()
    subprocess.run(["sh", "-c", "exec true"], capture_output=True)
    shell.append((time.perf_counter() - t) * 1000)
print("vchkpass, files store, SHA-512 hashes, %d runs of each (one process per login, as qmail-smtpd runs it)" % n)
print("%-19s %10s %10s %10s" % ("", "median ms", "p90 ms", "min ms"))
for label, ts in times.items():
    ts.sort()
    print("%-19s %10.2f %10.2f %10.2f" % (label, statistics.median(ts), ts[int(0.9 * len(ts))], ts[0]))
print("%-19s %10.2f" % ("(sh + exec true)", statistics.median(shell)))
wrong, unknown = statistics.median(times["wrong password"]), statistics.median(times["unknown mailbox"])
print("unknown mailbox / wrong password: %.3f" % (unknown / wrong))
print("unknown domain / wrong password: %.3f" % (statistics.median(times["unknown domain"]) / wrong))
print("recording the login (lastauth): right password / right, NOLASTAUTH: %.3f"
      % (statistics.median(times["right password"]) / statistics.median(times["right, NOLASTAUTH"])))
shutil.rmtree(home)
