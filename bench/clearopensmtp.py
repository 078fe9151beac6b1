"""Driver for bench/clearopensmtp.sh: one million relay rows, half of them stale; time clearopensmtp
against one plain DELETE of the same rows on the same server, with a concurrent client doing
CHECKRELAY-style lookups during each, and report both side by side.
    python3 bench/clearopensmtp.py BIN_DIR MARIADB_SOCKET [ROWS] [ROUNDS]"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

bindir, socket = sys.argv[1], sys.argv[2]
rows = int(sys.argv[3]) if len(sys.argv) > 3 else 1000000
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 1
db = "qvbench_relay"


def sql(statement, database=db):
    cmd = ["mariadb", "--no-defaults", "--socket=" + socket, "-u", "root", "-N", "-B"]
    if database:
        cmd.append(database)
    return subprocess.run(cmd + ["-e", statement], capture_output=True, text=True, check=True).stdout


home = tempfile.mkdtemp(prefix="qvbench-relay.")
os.makedirs(os.path.join(home, "control"))
os.makedirs(os.path.join(home, "etc"))
with open(os.path.join(home, "control", "host.mysql"), "w") as f:
    f.write("localhost:qvmail:qvtest-password:%s\n" % socket)
env = dict(os.environ, QMAILHOME=home, MYSQL_DATABASE=db)
sql("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s" % (db, db), database=None)
subprocess.run([os.path.join(bindir, "qmailctl"), "db", "init"], env=env, check=True,
               capture_output=True)


def fill():
    """`rows` grants, every other one stale (older than 60 minutes), timestamps spread as logins are."""
    sql("TRUNCATE TABLE relay")
    sql("INSERT INTO relay (email, ipaddr, timestamp) SELECT CONCAT('u', seq, '@example.com'), "
        "CONCAT('10.', seq DIV 65536, '.', seq DIV 256 MOD 256, '.', seq MOD 256), "
        "IF(seq MOD 2, UNIX_TIMESTAMP() - 3700 - seq MOD 7200, UNIX_TIMESTAMP() - seq MOD 3000) "
        "FROM seq_1_to_%d" % rows)
    sql("ANALYZE TABLE relay")
    sql("SET GLOBAL innodb_max_purge_lag_wait = 0", database=None)  # nothing left over from the last run
    time.sleep(1)


def measured(label, command):
    fill()
    lookup = subprocess.Popen([os.path.join(bindir, "qv_relay_lookup"), str(rows)], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert lookup.stdout.readline().strip() == "ready"
    time.sleep(1)
    t = time.monotonic()
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    seconds = time.monotonic() - t
    lookup.stdin.close()
    stats = json.loads(lookup.stdout.readline())
    lookup.wait()
    # A DELETE leaves the rows marked; InnoDB's purge threads remove them afterwards. Wait for them
    # (MariaDB's innodb_max_purge_lag_wait=0 returns when the history is purged): the whole cost.
    sql("SET GLOBAL innodb_max_purge_lag_wait = 0", database=None)
    purged = time.monotonic() - t
    left = int(sql("SELECT COUNT(*) FROM relay").strip())
    return {"run": label, "seconds": round(seconds, 3), "purged": round(purged, 3), "rows_left": left,
            "output": out.strip(), **stats}


idle = None
results = []
for _ in range(rounds):
    fill()
    lookup = subprocess.Popen([os.path.join(bindir, "qv_relay_lookup"), str(rows)], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    lookup.stdout.readline()
    time.sleep(3)
    lookup.stdin.close()
    idle = json.loads(lookup.stdout.readline())
    lookup.wait()
    cutoff_sql = "UNIX_TIMESTAMP() - 3600"
    results.append(measured("plain DELETE", ["mariadb", "--no-defaults", "--socket=" + socket, "-u", "root", db, "-e",
                                             "DELETE FROM relay WHERE timestamp <= " + cutoff_sql]))
    results.append(measured("clearopensmtp", [os.path.join(bindir, "clearopensmtp"), "-s", "--json"] + (["--batch", os.environ["QV_BATCH"]] if os.environ.get("QV_BATCH") else [])))

best = {}
for r in results:
    if r["run"] not in best or r["seconds"] < best[r["run"]]["seconds"]:
        best[r["run"]] = r
plain, ours = best["plain DELETE"], best["clearopensmtp"]
print("rows %d (%d stale), best of %d round(s); meanwhile a client does CHECKRELAY lookups (Store::find_grant)"
      " and, every tenth request, a login's REPLACE, ~1,000 requests/s" % (rows, (rows + 1) // 2, rounds))
head = ("", "statement", "+ purge", "lookups", "lookup p50", "lookup p99", "lookup max", "login p99", "login max")
print("%-14s %10s %10s %8s %11s %11s %11s %11s %11s" % head)
print("%-14s %10s %10s %8d %8.3f ms %8.3f ms %8.1f ms %8.3f ms %8.1f ms" % (
    "idle", "-", "-", idle["lookups"], idle["p50_ms"], idle["p99_ms"], idle["max_ms"], idle["write_p99_ms"],
    idle["write_max_ms"]))
for r in (plain, ours):
    print("%-14s %8.3f s %8.3f s %8d %8.3f ms %8.3f ms %8.1f ms %8.3f ms %8.1f ms" % (
        r["run"], r["seconds"], r["purged"], r["lookups"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["write_p99_ms"],
        r["write_max_ms"]))
print("clearopensmtp / plain DELETE: %.2f (statement), %.2f (until purged)" % (
    ours["seconds"] / plain["seconds"], ours["purged"] / plain["purged"]))
print("rows left: %d and %d; clearopensmtp said: %s" % (plain["rows_left"], ours["rows_left"], ours["output"]))
sql("DROP DATABASE IF EXISTS %s" % db, database=None)
shutil.rmtree(home)
