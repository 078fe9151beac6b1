"""Benchmark driver for bench/e2e.sh: mail end to end, from the first SMTP connection until the last
message is in its Maildir, qvmail against Postfix in the same run.
  e2e.py BIN_DIR MESSAGES SESSIONS ROUNDS
Postfix's smtp-source sends MESSAGES messages of 1 KB, one per connection (-d), over SESSIONS parallel
sessions to rcpt@example.com, a virtual mailbox: to qmail-smtpd under tcpserver (with qmail-queued) and
qmail-send delivering in-process into the Maildir; and to Postfix's smtpd, qmgr and virtual(8) delivery
agent into a virtual Maildir, from a scratch directory. Rounds alternate. Reports messages/s and the ratio
(and intake alone: until smtp-source is done), the peak memory of each system's resident processes, and
the flushes one message costs qvmail."""
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from postfix import ScratchPostfix, free_port, must, wait_port  # noqa: E402
from scratch import run, scratch_home  # noqa: E402

bindir, messages, sessions, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
WARMUP = 200


def count(directory):
    try:
        return len(os.listdir(directory))
    except FileNotFoundError:
        return 0


def hwm(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))


def source(port, n):
    """smtp-source; returns when it has sent everything (the caller then waits for the deliveries)."""
    p = subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(n), "-d", "-l", "1024", "-f",
                        "sender@bench.example", "-t", "rcpt@example.com", "127.0.0.1:%d" % port],
                       capture_output=True)
    if p.returncode != 0:
        raise RuntimeError("smtp-source: " + p.stderr.decode())


def wait_count(directory, want, timeout=1800):
    deadline = time.monotonic() + timeout
    while count(directory) < want:
        if time.monotonic() > deadline:
            raise RuntimeError("%s: %d of %d messages after %d s" % (directory, count(directory), want, timeout))
        time.sleep(0.05)  # listing 20,000 names costs: not too often


# ---- qvmail ----
home, env = scratch_home("qvbench-e2e.")
must(run(bindir, env, "vadddomain", "example.com", "-r", "12"), "vadddomain")
must(run(bindir, env, "vadduser", "rcpt@example.com", "--password-stdin", data=b"bench-password\n"), "vadduser")
with open(os.path.join(home, "control/me"), "w") as f:
    f.write("bench.example\n")
with open(os.path.join(home, "etc/tcp.smtp"), "w") as f:
    f.write('127.:allow,RELAYCLIENT=""\n')
must(run(bindir, env, "qmailctl", "cdb", "--quiet"), "qmailctl cdb")
must(run(bindir, env, "qmailctl", "queue", "init", "--quiet"), "queue init")
rcpt_dir = must(run(bindir, env, "vuserinfo", "rcpt@example.com", "--json"), "vuserinfo").stdout.decode()
qv_new = os.path.join(re.search(r'"(?:home|dir)"\s*:\s*"([^"]+)"', rcpt_dir).group(1), "Maildir", "new")


class Qvmail:
    def __init__(self):
        self.queued_log = os.path.join(home, "queued.log")
        self.send_log = os.path.join(home, "send.log")
        self.queued = subprocess.Popen([os.path.join(bindir, "qmail-queued")], env=env, stderr=open(self.queued_log, "w"))
        while not os.path.exists(os.path.join(home, "run/qmail-queued.sock")):
            time.sleep(0.01)
        self.send = subprocess.Popen([os.path.join(bindir, "qmail-send")], env=env, stdout=open(self.send_log, "w"),
                                     stderr=subprocess.STDOUT)
        while "starting" not in open(self.send_log).read():
            time.sleep(0.01)
        self.port = free_port()
        self.tcpserver = subprocess.Popen(
            ["tcpserver", "-q", "-H", "-R", "-l", "bench.example", "-x", os.path.join(home, "etc/tcp.smtp.cdb"),
             "-c", str(sessions + 20), "127.0.0.1", str(self.port), os.path.join(bindir, "qmail-smtpd")],
            env=env, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self):
        """Stops everything; returns (peak KB of qmail-send, of qmail-queued), and the two status lines."""
        mem = (hwm(self.send.pid), hwm(self.queued.pid))
        self.tcpserver.terminate()
        self.tcpserver.wait()
        for p in (self.send, self.queued):
            p.terminate()
            p.wait()
        with open(self.send_log) as f:
            send_line = f.read().strip().splitlines()[-1]
        with open(self.queued_log) as f:
            queued_line = f.read().strip().splitlines()[-1]
        return mem, send_line, queued_line


# ---- Postfix, from a scratch directory: virtual(8) into a virtual Maildir ----
VUID = 5000
pfx = ScratchPostfix(sessions, """virtual_mailbox_domains = example.com
virtual_mailbox_base = {pf}/mail
virtual_mailbox_maps = texthash:{pf}/conf/vmailbox
virtual_minimum_uid = 100
virtual_uid_maps = static:%d
virtual_gid_maps = static:%d
""" % (VUID, VUID))
os.mkdir(os.path.join(pfx.dir, "mail"))
os.chown(os.path.join(pfx.dir, "mail"), VUID, VUID)
with open(os.path.join(pfx.dir, "conf/vmailbox"), "w") as f:
    f.write("rcpt@example.com example.com/rcpt/\n")
pf_new = os.path.join(pfx.dir, "mail/example.com/rcpt/new")


results = {"qvmail": [], "Postfix": []}
intake = {"qvmail": [], "Postfix": []}  # messages/s until smtp-source is done (every message accepted)
qv_stats = []
pf_mem = {}
for r in range(rounds):
    # qvmail: a new Maildir count each round (the files stay: deleting 20,000 files costs the next round)
    q = Qvmail()
    source(q.port, WARMUP)
    wait_count(qv_new, r * (messages + WARMUP) + WARMUP)
    start_count = count(qv_new)
    t0 = time.monotonic()
    source(q.port, messages)
    intake["qvmail"].append(messages / (time.monotonic() - t0))
    wait_count(qv_new, start_count + messages)
    results["qvmail"].append(messages / (time.monotonic() - t0))
    qv_stats.append(q.stop())
    # Postfix
    pfx.start()
    source(pfx.port, WARMUP)
    wait_count(pf_new, (r * (messages + WARMUP)) + WARMUP)
    start_count = count(pf_new)
    t0 = time.monotonic()
    source(pfx.port, messages)
    intake["Postfix"].append(messages / (time.monotonic() - t0))
    wait_count(pf_new, start_count + messages)
    results["Postfix"].append(messages / (time.monotonic() - t0))
    pf_mem = pfx.stop()

pfx.remove()
shutil.rmtree(home, ignore_errors=True)

# ---- report ----
print("end to end: %d messages of 1 KB, one per connection, %d parallel sessions (smtp-source -d) into one "
      "virtual Maildir, %d rounds; messages/s from the first connection to the last message in the Maildir"
      % (messages, sessions, rounds))
med = {k: statistics.median(v) for k, v in results.items()}
for k, v in results.items():
    print("  %-8s %8.0f msg/s   (rounds: %s)" % (k, med[k], ", ".join("%.0f" % x for x in v)))
print("  ratio qvmail / Postfix: %.2f" % (med["qvmail"] / med["Postfix"]))
print("  intake alone (until smtp-source is done, deliveries under way): " +
      ", ".join("%s %.0f msg/s" % (k, statistics.median(v)) for k, v in intake.items()))
(send_kb, queued_kb), send_line, queued_line = qv_stats[-1]
print("peak memory (RSS): qvmail: qmail-send %d KB, qmail-queued %d KB (qmail-smtpd: one small process a session)"
      % (send_kb, queued_kb))
print("  Postfix: " + ", ".join("%s %d KB" % (k, max(v)) for k, v in sorted(pf_mem.items())))
print("flushes, last round (warm-up included):")
print("  " + queued_line)
print("  " + send_line)
m = re.search(r"(\d+) flushes for", send_line)
n = re.search(r"(\d+) flushes", queued_line.split(":", 2)[-1])
if m and n:
    print("  per message end to end: %.2f (intake %.2f + delivery %.2f)"
          % ((int(m.group(1)) + int(n.group(1))) / (messages + WARMUP), int(n.group(1)) / (messages + WARMUP),
             int(m.group(1)) / (messages + WARMUP)))
