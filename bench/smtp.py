"""Benchmark driver for bench/smtp.sh: mail intake over SMTP, qvmail against Postfix in the same run.
  smtp.py BIN_DIR MESSAGES SESSIONS ROUNDS
Postfix's smtp-source sends MESSAGES messages of 1 KB, one per connection (-d), over SESSIONS parallel
sessions: to qmail-smtpd under tcpserver (IndiMail's line, with -H -R -l: no DNS) handing to qmail-queued,
to the same without qmail-queued (qmail-queue writes alone), and to Postfix's smtpd with its queue in a
scratch directory (messages put on hold: queued durably, delivered never; no reverse DNS either). Rounds
alternate between the three. Also: flushes per message, peak memory per session, and qmail-smtpd's
exec-to-QUIT time against /bin/cat's."""
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


# ---- qvmail ----
home, env = scratch_home("qvbench-smtp.")
must(run(bindir, env, "vadddomain", "example.com", "-r", "12"), "vadddomain")
with open(os.path.join(home, "control/me"), "w") as f:
    f.write("bench.example\n")
with open(os.path.join(home, "etc/tcp.smtp"), "w") as f:
    f.write('127.:allow,RELAYCLIENT=""\n')
must(run(bindir, env, "qmailctl", "cdb", "--quiet"), "qmailctl cdb")


queues = [0]


def qv_reset_queue():
    """A new, empty queue. Old ones are not deleted until the end: on a filesystem without a journal, ext4
    avoids reusing an inode for 30 s after its deletion, and creating files right after deleting
    thousands of them costs many times more (the message files would pay for the benchmark's cleanup)."""
    queues[0] += 1
    env["QUEUEDIR"] = os.path.join(home, "queue.%d" % queues[0])
    must(run(bindir, env, "qmailctl", "queue", "init", "--quiet"), "queue init")


def qv_queued_count():
    return len(os.listdir(os.path.join(env["QUEUEDIR"], "todo")))


class Tcpserver:
    def __init__(self, program, *args):
        self.port = free_port()
        self.p = subprocess.Popen(["tcpserver", "-q", "-H", "-R", "-l", "bench.example", "-x",
                                   os.path.join(home, "etc/tcp.smtp.cdb"), "-c", str(sessions + 20), "127.0.0.1",
                                   str(self.port), program] + list(args), env=env, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self):
        self.p.terminate()
        self.p.wait()


class Queued:
    def __init__(self):
        self.log = os.path.join(home, "queued.log")
        self.p = subprocess.Popen([os.path.join(bindir, "qmail-queued")], env=env, stderr=open(self.log, "w"))
        while not os.path.exists(os.path.join(home, "run/qmail-queued.sock")):
            time.sleep(0.01)

    def stop(self):
        """Stops it; returns its last line (messages, batches, flushes) and its peak memory in KB."""
        with open("/proc/%d/status" % self.p.pid) as f:
            hwm = int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))
        self.p.terminate()
        self.p.wait()
        with open(self.log) as f:
            return f.read().strip().splitlines()[-1], hwm


# ---- Postfix, from a scratch directory: messages put on hold (queued durably, delivered never) ----
pfx = ScratchPostfix(sessions, "smtpd_client_restrictions = static:HOLD\n")
pf, pf_port = pfx.dir, pfx.port


def postfix(*args):
    return pfx.postfix(*args)


def pf_queued_count():
    n = 0
    for d in ("hold", "incoming", "active", "deferred", "maildrop"):
        for _, _, files in os.walk(os.path.join(pf, "queue", d)):
            n += len(files)
    return n


def pf_start():
    must(postfix("start"), "postfix start")
    wait_port(pf_port)


def pf_stop():
    """Stops Postfix; returns the peak memory (KB) of its smtpd and cleanup processes."""
    mem = pfx.stop()
    return {"smtpd": mem.get("smtpd", []), "cleanup": mem.get("cleanup", [])}


# ---- runs ----
def source(port, n):
    t0 = time.monotonic()
    p = subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(n), "-d", "-l", "1024", "-f",
                        "sender@bench.example", "-t", "rcpt@remote.example", "127.0.0.1:%d" % port],
                       capture_output=True)
    elapsed = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError("smtp-source: " + p.stderr.decode())
    return elapsed


results = {"qvmail + qmail-queued": [], "qvmail, qmail-queue alone": [], "Postfix": []}
queued_stats = []
for r in range(rounds):
    # qvmail with the queue writer
    qv_reset_queue()
    q = Queued()
    ts = Tcpserver(os.path.join(bindir, "qmail-smtpd"))
    source(ts.port, 200)  # warm-up
    before = qv_queued_count()
    t = source(ts.port, messages)
    ts.stop()
    line, q_hwm = q.stop()
    got = qv_queued_count() - before
    assert got == messages, "qvmail queued %d of %d" % (got, messages)
    results["qvmail + qmail-queued"].append(messages / t)
    queued_stats.append(line)
    # qvmail, qmail-queue writing alone
    qv_reset_queue()
    ts = Tcpserver(os.path.join(bindir, "qmail-smtpd"))
    source(ts.port, 200)
    before = qv_queued_count()
    t = source(ts.port, messages)
    ts.stop()
    assert qv_queued_count() - before == messages
    results["qvmail, qmail-queue alone"].append(messages / t)
    # Postfix
    pf_start()
    source(pf_port, 200)
    before = pf_queued_count()
    t = source(pf_port, messages)
    time.sleep(0.5)
    got = pf_queued_count() - before
    pf_hwm = pf_stop()
    assert got == messages, "Postfix queued %d of %d" % (got, messages)
    results["Postfix"].append(messages / t)

# flushes one message costs alone: qmail-queue writing alone (counted by strace), and qmail-queued given
# one message (its own count)
qv_reset_queue()
msg = os.path.join(home, "msg")
with open(msg, "wb") as f:
    f.write(b"Subject: x\n\nx\n")


def one_message(argv):
    r_, w_ = os.pipe()
    os.write(w_, b"Fa@b.example\0Tc@d.example\0\0")
    os.close(w_)
    with open(msg, "rb") as m:
        must(subprocess.run(argv, stdin=m, stdout=r_, stderr=subprocess.PIPE, env=env), " ".join(argv))
    os.close(r_)


trace = os.path.join(home, "strace.log")
one_message(["strace", "-f", "-c", "-e", "trace=fsync,fdatasync,syncfs", "-o", trace,
             os.path.join(bindir, "qmail-queue")])
with open(trace) as f:
    total = re.findall(r"^\s*\S+\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total", f.read(), re.M)
alone_flushes = int(total[0]) if total else None
q = Queued()
one_message([os.path.join(bindir, "qmail-queue")])
single_line, _ = q.stop()

# peak memory of one qmail-smtpd session: GNU time around it, 200 sessions
qv_reset_queue()
q = Queued()
memlog = os.path.join(home, "mem.log")
wrapper = os.path.join(home, "timed-smtpd")
with open(wrapper, "w") as f:
    f.write("#!/bin/sh\nexec /usr/bin/time -f %%M -a -o %s %s\n" % (memlog, os.path.join(bindir, "qmail-smtpd")))
os.chmod(wrapper, 0o755)
ts = Tcpserver(wrapper)
source(ts.port, 200)
ts.stop()
q.stop()
with open(memlog) as f:
    smtpd_kb = sorted(int(x) for x in f.read().split() if x.isdigit())

# exec to QUIT: qmail-smtpd answering QUIT against /bin/cat copying it, alternately
qv_env = dict(env, TCPREMOTEIP="127.0.0.1", TCPLOCALIP="127.0.0.1")
times = {"qmail-smtpd": [], "/bin/cat": []}
for i in range(1000):
    for name, argv in (("qmail-smtpd", [os.path.join(bindir, "qmail-smtpd")]), ("/bin/cat", ["/bin/cat"])):
        t0 = time.perf_counter()
        subprocess.run(argv, input=b"QUIT\r\n", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=qv_env)
        times[name].append(time.perf_counter() - t0)

postfix("stop")
shutil.rmtree(pf, ignore_errors=True)
shutil.rmtree(home, ignore_errors=True)

# ---- report ----
print("mail intake: %d messages of 1 KB, one per connection, %d parallel sessions (smtp-source -d), "
      "%d rounds; messages/s, median of the rounds" % (messages, sessions, rounds))
med = {k: statistics.median(v) for k, v in results.items()}
for k, v in results.items():
    print("  %-28s %8.0f msg/s   (rounds: %s)" % (k, med[k], ", ".join("%.0f" % x for x in v)))
print("  ratio qvmail + qmail-queued / Postfix: %.2f" % (med["qvmail + qmail-queued"] / med["Postfix"]))
print("  ratio qvmail, qmail-queue alone / Postfix: %.2f" % (med["qvmail, qmail-queue alone"] / med["Postfix"]))
print("flushes (fsync, fdatasync, syncfs) per message:")
print("  qmail-queue writing alone: %s (the message, its directory, the envelope, intd/, todo/)" % alone_flushes)
print("  qmail-queued, one message alone: " + single_line.replace("qmail-queued: stopped: ", ""))
for line in queued_stats:
    print("  qmail-queued under load: " + line.replace("qmail-queued: stopped: ", ""))
print("peak memory per session (RSS):")
print("  qmail-smtpd: median %d KB, max %d KB (one process a session, 200 sessions); qmail-queued: %d KB in all"
      % (statistics.median(smtpd_kb), smtpd_kb[-1], q_hwm))
if pf_hwm["smtpd"]:
    print("  Postfix smtpd: median %d KB, max %d KB (%d processes); cleanup: max %d KB (%d processes)"
          % (statistics.median(pf_hwm["smtpd"]), max(pf_hwm["smtpd"]), len(pf_hwm["smtpd"]),
             max(pf_hwm["cleanup"] or [0]), len(pf_hwm["cleanup"])))
mq, mc = statistics.median(times["qmail-smtpd"]) * 1000, statistics.median(times["/bin/cat"]) * 1000
print("exec to QUIT (1000 runs each, alternating, medians): qmail-smtpd %.3f ms, /bin/cat %.3f ms, ratio %.2f"
      % (mq, mc, mq / mc))
