"""A real influxd for the history tests (Debian's influxdb 1.6, on free ports in a temporary
directory), and the demo bridge writing to it."""

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import ROOT, find_binary


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Influxd:
    def __init__(self, tmp):
        self.tmp = tmp
        self.port, self.rpc = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (tmp / "influxdb.conf").write_text(f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc}"
[meta]
  dir = "{tmp}/meta"
[data]
  dir = "{tmp}/data"
  wal-dir = "{tmp}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[monitor]
  store-enabled = false
""")
        self.proc = None
        self.start()
        self.query("CREATE DATABASE busbar", db=None, method="POST")

    def start(self):
        self.proc = subprocess.Popen([shutil.which("influxd") or "influxd", "-config", str(self.tmp / "influxdb.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/ping", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("influxd did not start")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None

    def query(self, q, db="busbar", method="GET"):
        params = {"q": q}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params).encode()
        if method == "GET":
            req = urllib.request.Request(self.url + "/query?" + data.decode())
        else:
            req = urllib.request.Request(self.url + "/query", data=data, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def values(self, q):
        series = self.query(q)["results"][0].get("series", [])
        return [row for s in series for row in s["values"]]


@pytest.fixture
def influxd(tmp_path):
    d = Influxd(tmp_path)
    try:
        yield d
    finally:
        d.stop()


def start_demo(influxd, buffer_dir, extra=(), sim_control="127.0.0.1:0", stderr=subprocess.DEVNULL):
    """`busbar demo --influxdb` on free ports; returns the process and its HTTP API's base URL."""
    http = free_port()
    proc = subprocess.Popen(
        [find_binary("busbar"), "demo", "--modbus", "127.0.0.1:0", "--http", f"127.0.0.1:{http}", "--opcua",
         "127.0.0.1:0", "--bacnet", "127.0.0.1:0", "--snmp", "127.0.0.1:0", "--sim-gateway", "127.0.0.1:0",
         "--sim-control", sim_control, "--influxdb", f"{influxd.url}?db=busbar", "--history-buffer",
         str(buffer_dir), *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
    return proc, f"http://127.0.0.1:{http}"


def metric(base, name):
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def wait_until(pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return True
        except OSError:
            pass
        time.sleep(0.3)
    return False
