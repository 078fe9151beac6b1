"""Shared by the benchmark drivers: Postfix run from a scratch directory (as root: its master must be),
configuring nothing system-wide, and the small helpers both drivers use."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

# master.cf's services besides smtpd: those Postfix starts or asks for on the way to a queue file
SERVICES = ("pickup unix n - n 60 1 pickup", "cleanup unix n - n - 0 cleanup", "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite", "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce", "trace unix - - n - 0 bounce", "verify unix - - n - 1 verify",
            "flush unix n - n 1000 0 flush", "proxymap unix - - n - - proxymap", "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp", "showq unix n - n - - showq", "error unix - - n - - error",
            "retry unix - - n - - error", "discard unix - - n - - discard", "local unix - n n - - local",
            "virtual unix - n n - - virtual", "anvil unix - - n - 1 anvil", "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("nothing on port %d" % port)


def must(p, what):
    if p.returncode != 0:
        raise RuntimeError("%s: %s %s" % (what, p.stdout.decode(), p.stderr.decode()))
    return p


class ScratchPostfix:
    """Postfix's smtpd on a free loopback port, its queue and configuration in a new directory; `main`
    is appended to a main.cf that relays for 127.0.0.0/8 and does no DNS ({pf} in it: the directory)."""

    def __init__(self, sessions, main=""):
        self.dir = pf = tempfile.mkdtemp(prefix="qvbench-postfix.")
        os.chmod(pf, 0o755)
        self.port = free_port()
        for d in ("conf", "queue", "data"):
            os.mkdir(os.path.join(pf, d))
        shutil.chown(os.path.join(pf, "data"), "postfix")
        with open(os.path.join(pf, "conf/main.cf"), "w") as f:
            f.write("""compatibility_level = 3.6
queue_directory = {pf}/queue
data_directory = {pf}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = bench.example
mydomain = bench.example
mydestination =
relay_domains =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
smtpd_peername_lookup = no
smtpd_relay_restrictions = permit_mynetworks, reject
default_process_limit = {limit}
maillog_file = {pf}/maillog
maillog_file_prefixes = {pf}
""".format(pf=pf, limit=sessions + 20) + main.format(pf=pf))
        with open(os.path.join(pf, "conf/master.cf"), "w") as f:
            f.write("127.0.0.1:%d inet n - n - - smtpd\n" % self.port)
            for line in SERVICES:
                f.write(line + "\n")

    def postfix(self, *args):
        # postfix writes its complaints to the terminal only; script gives it one
        return subprocess.run(["script", "-qc", "postfix -c %s/conf %s" % (self.dir, " ".join(args)), "/dev/null"],
                              capture_output=True)

    def start(self):
        must(self.postfix("start"), "postfix start")
        wait_port(self.port)

    def stop(self):
        """Stops Postfix; returns the peak memory (KB) of its processes, by name."""
        with open(os.path.join(self.dir, "queue/pid/master.pid")) as f:
            master = f.read().strip()
        mem = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/stat" % pid) as f:
                    stat = f.read()
                with open("/proc/%s/status" % pid) as f:
                    status = f.read()
            except OSError:
                continue
            comm, ppid = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()[1]
            if ppid == master or pid == master:
                mem.setdefault(comm, []).append(int(re.search(r"VmHWM:\s+(\d+)", status).group(1)))
        self.postfix("stop")
        time.sleep(1)
        return mem

    def remove(self):
        self.postfix("stop")
        shutil.rmtree(self.dir, ignore_errors=True)
