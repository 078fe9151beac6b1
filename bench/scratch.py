"""Shared by the benchmark drivers: a scratch QMAILHOME, an environment that selects it and none of the
caller's own settings, and a way to run the built commands in it."""
import os
import subprocess
import tempfile

# What would make a command look elsewhere than the scratch home, or behave otherwise.
SETTINGS = ("CONTROLDIR", "TCP_FILE", "ASSIGNDIR", "DOMAINDIR", "BASE_PATH", "QUEUEDIR", "SERVICEDIR",
            "QUEUED_SOCKET", "QMAILQUEUE", "MYSQL_READ_DEFAULT_FILE", "MYSQL_READ_DEFAULT_GROUP", "MYSQL_DATABASE", "PASSWORD_HASH")


def scratch_home(prefix):
    """A new QMAILHOME with control/ and etc/, and the environment to run commands in it."""
    home = tempfile.mkdtemp(prefix=prefix)
    os.chmod(home, 0o755)  # commands may run as another user
    for d in ("control", "etc"):
        os.makedirs(os.path.join(home, d))
    env = dict(os.environ, QMAILHOME=home)
    for k in SETTINGS:
        env.pop(k, None)
    return home, env


def run(bindir, env, *args, data=None):
    """Runs a built command; returns the finished process."""
    return subprocess.run([os.path.join(bindir, args[0])] + list(args[1:]), env=env, input=data,
                          capture_output=True)
