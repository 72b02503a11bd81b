"""The soak's rig (hil/soak): the daemon, the replicas and the emulators as child processes,
the socket client, and the /proc readings. It starts, stops and measures; it decides nothing
about sales (lanes.py) or ledgers (ledgers.py)."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")
MiB = 1024 * 1024

def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, file=sys.stderr, flush=True)


class RigError(Exception):
    pass


class Cut(Exception):
    """The connection closed without an answer (the daemon was killed)."""


class NoDaemon(Exception):
    """Nothing listens on the socket (the daemon is down)."""


# --- the socket ----------------------------------------------------------------------------


def rpc(sock_path, req, timeout=900):
    """One request on a new connection; the answer, or Cut / NoDaemon."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect(sock_path)
        except OSError as e:
            raise NoDaemon(str(e))
        try:
            s.sendall((json.dumps(req) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    raise Cut("closed")
                buf += chunk
        except OSError as e:
            raise Cut(str(e))
        return json.loads(buf)
    finally:
        s.close()


def is_unknown(a):
    return a.get("error_type") == "unknown_result_error"


# --- processes -----------------------------------------------------------------------------


def proc_stat(pid):
    """(utime + stime in ticks) of a live process, else None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return None


def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0])  # kB
                elif k == "Threads":
                    out[k] = int(v)
        fd_dir = "/proc/%d/fd" % pid
        fds = []
        for fd in os.listdir(fd_dir):
            try:
                fds.append(os.readlink(os.path.join(fd_dir, fd)))
            except OSError:
                pass
        tcp = set()
        for table in ("tcp", "tcp6"):
            try:
                with open("/proc/%d/net/%s" % (pid, table)) as f:
                    next(f)
                    tcp.update("socket:[%s]" % line.split()[9] for line in f)
            except (OSError, StopIteration):
                pass
        out["tcp"] = sum(1 for fd in fds if fd in tcp)
        out["fds"] = len(fds) - out["tcp"]
    except OSError:
        return None
    return out


def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class Rig:
    def __init__(self, args, w):
        self.args = args
        self.bin = args.bin
        self.w = w
        self.logs = os.path.join(w, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.sock = os.path.join(w, "posbridge.sock")
        self.state = os.path.join(w, "state")
        self.clock_file = os.path.join(w, "clock-offset")
        open(self.clock_file, "w").close()
        self.replicas = {}  # name -> dict(proc, url, listen, state, gen)
        self.emus = {}  # name -> dict(proc, starts)
        self.daemon = None
        self.daemon_starts = 0
        self.daemon_logs = []
        self.cpu_ticks = 0  # CPU of daemon processes, counted up to their last sample
        self.last_ticks = 0
        self.secrets = {}

    def write_config(self):
        """Every provider in one config: the replicas' URLs (started first), the secrets in
        files, the timings of the kill loop's rigs (tests/kill_loop/), the journal's capacity
        (--journal-capacity) written out."""
        pp, io, ps = (self.replicas[n]["url"] for n in ("phonepe", "iotpay", "paysera"))
        salt = self.secret_file("phonepe.salt", self.REPLICA_SECRETS["phonepe"])
        key = self.secret_file("iotpay.key", self.REPLICA_SECRETS["iotpay"])
        mac = self.secret_file("paysera.mac", self.REPLICA_SECRETS["paysera"])
        pw = self.secret_file("lifepay.password", "soak-lifepay-pass-%d" % os.getpid())
        self.account = "shop-17:" + pw
        cfg = f"""default_provider = "sim"
[journal]
capacity = {self.args.journal_capacity}
[providers.sim]
currency = "INR"
[providers.phonepe]
base_url = "{pp}"
merchant_id = "MERCH1"
store_id = "STORE1"
terminal_id = "TERM1"
salt_key_file = "{salt}"
salt_index = 1
provider_id = "PROV1"
timeout_ms = 3000
request_timeout_ms = 1000
status_poll_ms = [100]
[providers.iotpay]
base_url = "{io}/v1/"
mch_id = "10000701"
key_file = "{key}"
job_no = "cashier1"
currency = "CAD"
timeout_ms = 1500
status_poll_ms = [100, 200]
not_found_final_ms = 500
[providers.paysera]
base_url = "{ps}"
client_id = "till-soak"
mac_key_file = "{mac}"
spot_id = "7"
currency = "EUR"
timeout_ms = 3000
status_poll_ms = [100]
[providers.lifepay]
login = "shop-17"
password_file = "{pw}"
currency = "INR"
"""
        path = os.path.join(self.w, "posbridge.toml")
        with open(path, "w") as f:
            f.write(cfg)
        os.chmod(path, 0o600)

    # secrets
    def secret_file(self, name, value):
        path = os.path.join(self.w, name)
        with open(path, "w") as f:
            f.write(value + "\n")
        os.chmod(path, 0o600)
        self.secrets[name] = value
        return path

    # replicas
    REPLICA_OPTIONS = {
        "phonepe": ["pay_after_ms=100", "refund_after_ms=100"],
        "iotpay": ["terminal_ms=100", "mch_id=10000701"],
        "paysera": ["client_id=till-soak", "reserve_after_ms=100"],
    }
    REPLICA_SECRETS = {
        "phonepe": "pp-soak-salt-51f0c2",
        "iotpay": "iotpay-soak-key-8d21",
        "paysera": "ps-soak-mac-key-3a9e7c10",
    }

    def replica_start(self, name):
        r = self.replicas.setdefault(name, {"gen": 0, "listen": "127.0.0.1:0"})
        r["gen"] += 1
        r["state"] = os.path.join(self.w, "ledgers", "%s-%04d.json" % (name, r["gen"]))
        os.makedirs(os.path.dirname(r["state"]), exist_ok=True)
        cmd = [self.bin, "replica", name, "--listen", r["listen"], "--state", r["state"]]
        for o in self.REPLICA_OPTIONS[name]:
            cmd += ["--option", o]
        env = dict(os.environ, POSBRIDGE_REPLICA_SECRET=self.REPLICA_SECRETS[name])
        env.pop("RUST_LOG", None)
        err = open(os.path.join(self.logs, "replica-%s.log" % name), "ab")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                             env=env)
        err.close()
        line = p.stdout.readline().decode().strip()
        if not line.startswith("listening on "):
            raise RigError("replica %s said %r" % (name, line))
        r["url"] = line[len("listening on "):]
        r["listen"] = r["url"].split("://", 1)[-1]
        r["proc"] = p
        threading.Thread(target=p.stdout.read, daemon=True).start()

    def replica_stop(self, name):
        p = self.replicas[name]["proc"]
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    # emulators
    def emu_start(self, name, kind, serial, extra=()):
        e = self.emus.setdefault(name, {"starts": 0})
        e["starts"] += 1
        e["link"] = os.path.join(self.w, name)
        e["state"] = os.path.join(self.w, name + ".state.json")
        e["log"] = os.path.join(self.logs, name + ".log")
        cmd = [self.bin, "emulate", kind, "--pty", e["link"], "--state", e["state"],
               "--serial", serial] + list(extra)
        env = dict(os.environ)
        env.pop("RUST_LOG", None)
        err = open(e["log"], "ab")
        e["proc"] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=err, env=env)
        err.close()
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if e["proc"].poll() is not None:
                raise RigError("emulator %s exited (%s)" % (name, e["log"]))
            with open(e["log"], "rb") as f:
                if f.read().count(b"linked at") >= e["starts"]:
                    return
            time.sleep(0.05)
        raise RigError("emulator %s did not link its pty in 60 s" % name)

    def emu_kill9(self, name):
        p = self.emus[name]["proc"]
        p.kill()
        p.wait()

    # the daemon
    def daemon_start(self, extra_env=None):
        self.daemon_starts += 1
        path = os.path.join(self.logs, "daemon-%04d.log" % self.daemon_starts)
        self.daemon_logs.append(path)
        env = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "WATCHDOG_USEC", "JOURNAL_STREAM",
                  "POSBRIDGE_CONFIG", "RUST_LOG"):
            env.pop(k, None)
        env["POSBRIDGE_TEST_CLOCK_OFFSET_FILE"] = self.clock_file
        env.update(extra_env or {})
        err = open(path, "ab")
        self.daemon = subprocess.Popen(
            [self.bin, "daemon", "--config", os.path.join(self.w, "posbridge.toml"),
             "--socket", self.sock, "--state-dir", self.state],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env)
        err.close()
        self.last_ticks = 0
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if self.daemon.poll() is not None:
                raise RigError("daemon exited with %s (%s)" % (self.daemon.returncode, path))
            try:
                rpc(self.sock, {"action": "status"}, timeout=10)
                return
            except (NoDaemon, Cut):
                time.sleep(0.05)
        raise RigError("daemon not ready in 60 s (%s)" % path)

    def sample_cpu(self):
        """Adds the daemon's CPU since the last sample to cpu_ticks."""
        t = proc_stat(self.daemon.pid)
        if t is not None:
            self.cpu_ticks += t - self.last_ticks
            self.last_ticks = t

    def daemon_stop(self, sig):
        self.sample_cpu()
        self.daemon.send_signal(sig)
        try:
            rc = self.daemon.wait(60)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            rc = self.daemon.wait()
            raise RigError("daemon did not stop in 60 s after signal %d" % sig)
        if sig == signal.SIGTERM and rc != 0:
            raise RigError("daemon exited %s after SIGTERM (%s)" % (rc, self.daemon_logs[-1]))

    def request(self, req):
        """A request that must be answered (the daemon up): retried while it is down."""
        end = time.monotonic() + 120
        while True:
            try:
                return rpc(self.sock, req)
            except (NoDaemon, Cut):
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)

    def stop_all(self):
        procs = [self.daemon] + [r.get("proc") for r in self.replicas.values()] + \
            [e.get("proc") for e in self.emus.values()]
        for p in procs:
            if p is not None and p.poll() is None:
                p.terminate()
        for p in procs:
            if p is not None:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
