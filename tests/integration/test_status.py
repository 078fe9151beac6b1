"""qmailctl status against a running mail host (qmail-queued, qmail-send logging through multilog t,
qmail-smtpd under tcpserver): the services, the queue with mail deferred to an unreachable destination,
the deliveries of the last hour from the log, text, JSON and Prometheus' format (checked by promtool);
exit 1 when something needs attention."""
import json
import os
import re
import smtplib
import subprocess
import time
import unittest

from qvtest import free_port, tool
from smtptest import JOE, MailHost, Process

PROMTOOL = os.environ.get("QV_PROMTOOL", "")


class Status(unittest.TestCase):
    def setUp(self):
        self.host = h = MailHost()
        self.addCleanup(h.cleanup)
        h.set_rules('127.0.0.1:allow,RELAYCLIENT=""\n')
        h.start()
        # the SMTP service on this port is one of the host's (as qmailctl init makes service/qmail-smtpd.25)
        os.makedirs(h.home.path("service", "qmail-smtpd.%d" % h.port, "variables"))
        # mail for unreachable.example goes to a port where nothing listens: deferred
        h.home.write("control/smtproutes", "unreachable.example:127.0.0.1:%d\n" % free_port())
        self.logdir = h.home.path("log", "qmail-send")
        os.makedirs(os.path.dirname(self.logdir))
        self.send = Process(["sh", "-c", 'exec "$0" 2>&1 | multilog t "$1"', tool("qmail-send"), self.logdir],
                            h.env(), h.home.path("multilog.err"))
        h.processes.insert(0, self.send)
        h.wait_for(lambda: "qmail-send starting" in self.log(), "qmail-send's start in its multilog")

    def log(self):
        try:
            with open(os.path.join(self.logdir, "current"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def status(self, *args):
        return subprocess.run([tool("qmailctl"), "status", "--log", os.path.join(self.logdir, "current")] + list(args),
                              env=self.host.env(), capture_output=True, timeout=60)

    def mail(self, to):
        with smtplib.SMTP("127.0.0.1", self.host.port, timeout=30) as s:
            s.sendmail("sender@remote.example", [to], "Subject: status\n\nhello\n")

    def test_a_healthy_host_then_mail_deferred(self):
        self.mail(JOE)
        self.host.wait_for(lambda: ": success: " in self.log(), "the delivery to joe")
        p = self.status("--warn-age", "0")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = p.stdout.decode()
        self.assertIn("attention: none", out)
        for service in ("qmail-queued", "qmail-send", "qmail-smtpd@%d" % self.host.port):
            self.assertRegex(out, r"\n  %s +running since \d{4}-\d\d-\d\d " % re.escape(service))
        self.assertIn("deliveries, last hour: 1 delivered, 0 deferred, 0 bounced", out)
        self.assertIn("queue: 0 messages", out)

        self.mail("someone@unreachable.example")
        self.host.wait_for(lambda: ": deferral: " in self.log(), "the deferral to unreachable.example")
        p = self.status("--warn-age", "0")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        out = p.stdout.decode()
        self.assertRegex(out, r"\n    unreachable\.example  1, \d+ s\n")
        self.assertIn("1 deferred", out)
        self.assertRegex(out, r"attention:\n  - 1 recipient at unreachable\.example waiting for \d+ s")
        # just deferred: the default --warn-age (an hour) sees nothing wrong
        self.assertEqual(self.status().returncode, 0)

        j = json.loads(self.status("--json", "--warn-age", "0").stdout)
        self.assertEqual(j["queue"]["messages"], 1)
        self.assertEqual([(d["domain"], d["recipients"]) for d in j["queue"]["waiting_by_domain"]],
                         [("unreachable.example", 1)])
        self.assertEqual((j["deliveries"]["delivered"], j["deliveries"]["bounced"]), (1, 0))
        self.assertGreaterEqual(j["deliveries"]["deferred"], 1)
        self.assertEqual(sum(m["delivered"] for m in j["deliveries"]["per_minute"]), 1)
        services = {s["name"]: s for s in j["services"]}
        self.assertTrue(services["qmail-send"]["running"])
        with open(self.host.home.path("queue/lock/sendmutex")) as f:
            self.assertEqual(services["qmail-send"]["pid"], int(f.read()))
        self.assertEqual(j["store"], {"backend": "files", "up": True, "server": None, "version": None, "problem": None})
        self.assertEqual(len(j["attention"]), 1)

        prom = self.status("--prometheus", "--warn-age", "0")
        self.assertEqual(prom.returncode, 1)
        text = prom.stdout.decode()
        self.assertIn('qvmail_queue_recipients_waiting{domain="unreachable.example"} 1\n', text)
        self.assertIn('qvmail_deliveries_last_hour{result="delivered"} 1\n', text)
        self.assertIn('qvmail_service_up{service="qmail-send"} 1\n', text)
        self.assertIn("qvmail_attention 1\n", text)
        self.assertTrue(os.access(PROMTOOL, os.X_OK), "no promtool at QV_PROMTOOL=%r (scripts/test fetches it)" % PROMTOOL)
        check = subprocess.run([PROMTOOL, "check", "metrics"], input=prom.stdout, capture_output=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

        # qmail-send stopped: that needs attention at once
        self.send.stop()
        p = self.status()
        self.assertEqual(p.returncode, 1)
        self.assertIn("qmail-send          NOT RUNNING", p.stdout.decode())
        self.assertIn("  - qmail-send is not running", p.stdout.decode())

    def test_a_log_without_timestamps_is_said_so(self):
        self.host.home.write("plain.log", "delivery 1: msg 5 local joe@example.com: success: ok (0.001 s)\n")
        p = subprocess.run([tool("qmailctl"), "status", "--log", self.host.home.path("plain.log")],
                           env=self.host.env(), capture_output=True)
        self.assertIn(b"has no timestamps", p.stdout)
        p = subprocess.run([tool("qmailctl"), "status", "--log", self.host.home.path("missing.log"), "--json"],
                           env=self.host.env(), capture_output=True)
        self.assertIn("missing.log", json.loads(p.stdout)["deliveries"]["problem"])
        bad = subprocess.run([tool("qmailctl"), "status", "--warn-age", "soon"], env=self.host.env(), capture_output=True)
        self.assertEqual(bad.returncode, 64)
        self.assertEqual(len(bad.stderr.splitlines()), 1, bad.stderr)


if __name__ == "__main__":
    unittest.main()
