#!/usr/bin/env python3
"""Mailbox adds and logins per second on the MariaDB store: one host on one server, two hosts on one
server, one host on a Galera node, two hosts on two Galera nodes at once. Each host is a QMAILHOME of its
own with control/me and one worker; the hosts of a setup share one database. Usage:
  cluster.py BIN_DIR ADDS LOGINS SINGLE_SOCKET NODE1_SOCKET NODE2_SOCKET"""
import os
import subprocess
import sys
import threading
import time

from scratch import run, scratch_home

bindir, adds, logins = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
single, node1, node2 = sys.argv[4:7]


def host(name, socket_path, database):
    home, env = scratch_home("qvmail-bench-cluster.")
    with open(os.path.join(home, "control", "host.mysql"), "w") as f:
        f.write("localhost:qvmail:qvtest-password:%s\n" % socket_path)
    with open(os.path.join(home, "control", "me"), "w") as f:
        f.write(name + "\n")
    env["MYSQL_DATABASE"] = database
    return home, env


def check(p, what):
    if p.returncode != 0:
        sys.exit("%s failed (%d): %s" % (what, p.returncode, p.stderr.decode()))


def login(env, address):
    r, w = os.pipe()
    os.write(w, address.encode() + b"\0pw-" + address.split("@")[0].encode() + b"\0\0")
    os.close(w)
    try:
        return subprocess.run(["sh", "-c", 'exec "$@" 3<&%d' % r, "sh", os.path.join(bindir, "vchkpass"), "-s", "imap",
                               "--", "true"], env=dict(env, TCPREMOTEIP="10.1.2.3"), pass_fds=(r,),
                              capture_output=True)
    finally:
        os.close(r)


def timed(hosts, job):
    """Runs job(i, env) on every host at once, one thread each; returns the seconds the slowest took."""
    threads = [threading.Thread(target=job, args=(i, env)) for i, (_, env) in enumerate(hosts)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def setup(label, sockets):
    database = "bench_%s_%d" % (label.replace("-", "_").replace(" ", "_"), os.getpid())
    hosts = [host("h%d.example.net" % i, s, database) for i, s in enumerate(sockets)]
    check(run(bindir, hosts[0][1], "qmailctl", "db", "init"), "db init")
    check(run(bindir, hosts[0][1], "vadddomain", "example.com", "-r", "10"), "vadddomain")
    for _, env in hosts[1:]:
        check(run(bindir, env, "qmailctl", "sync"), "qmailctl sync")

    def add(i, env):
        for n in range(adds):
            name = "h%du%05d" % (i, n)
            check(run(bindir, env, "vadduser", name + "@example.com", "--password-stdin",
                      data=("pw-%s\n" % name).encode()), "vadduser")

    def log_in(i, env):
        for n in range(logins):
            name = "h%du%05d" % (i, n % adds)
            check(login(env, name + "@example.com"), "vchkpass")

    add_s = timed(hosts, add)
    login_s = timed(hosts, log_in)
    for home, _ in hosts:
        subprocess.run(["rm", "-rf", home])
    r = {"setup": label, "hosts": len(hosts), "adds_per_s": round(adds * len(hosts) / add_s, 1),
         "logins_per_s": round(logins * len(hosts) / login_s, 1)}
    print("%-26s %d host(s): %8.1f adds/s %8.1f logins/s" % (label, r["hosts"], r["adds_per_s"], r["logins_per_s"]),
          flush=True)
    return r


one = setup("one server", [single])
two = setup("one server, two hosts", [single, single])
g1 = setup("galera, one node", [node1])
g2 = setup("galera, two nodes", [node1, node2])
print()
print("galera one node / one server:            adds %.2f, logins %.2f" % (
    g1["adds_per_s"] / one["adds_per_s"], g1["logins_per_s"] / one["logins_per_s"]))
print("galera two nodes / one server, two hosts: adds %.2f, logins %.2f" % (
    g2["adds_per_s"] / two["adds_per_s"], g2["logins_per_s"] / two["logins_per_s"]))
print("galera two nodes / galera one node:       adds %.2f, logins %.2f" % (
    g2["adds_per_s"] / g1["adds_per_s"], g2["logins_per_s"] / g1["logins_per_s"]))
