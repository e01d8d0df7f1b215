"""Fixtures that run the real busbar-sim binary on free ports and stop it afterwards.

The binaries come from $BUSBAR_SIM and $BUSBAR, else from the cargo target directory
($CARGO_TARGET_DIR or ./target, debug then release).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def find_binary(name: str) -> str:
    explicit = os.environ.get(name.upper().replace("-", "_"))
    if explicit:
        return explicit
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    # The debug build is what scripts/test builds right before; a release binary may be stale.
    for profile in ("debug", "release"):
        candidate = target / profile / name
        if candidate.exists():
            return str(candidate)
    raise RuntimeError(f"{name} not built: run `cargo build -p busbar-sim` first")


def stop_process(proc: subprocess.Popen, timeout: float = 10):
    """Stop a server as an operator does (SIGINT, its clean shutdown), killed if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Simulator:
    """A running busbar-sim: its Modbus gateway port and control API."""

    def __init__(self, scenario: str = "scenarios/demo.yaml", speed: float = 1.0):
        self.proc = subprocess.Popen(
            [find_binary("busbar-sim"), "run", scenario, "--listen", "127.0.0.1:0",
             "--control", "127.0.0.1:0", "--speed", str(speed)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.port = None
        self.control = None
        deadline = time.time() + 20
        while time.time() < deadline and (self.port is None or self.control is None):
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"modbus-tcp \w+: 127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
            m = re.search(r"control API: (http://[0-9.:]+)", line)
            if m:
                self.control = m.group(1)
        if self.port is None or self.control is None:
            self.stop()
            raise RuntimeError("busbar-sim did not report its ports")

    def api(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.control + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read() or b"null")

    def truth(self, device: str, point: str) -> float:
        return self.api("GET", f"/api/devices/{device}")["truth"][point]["value"]

    def stop(self):
        stop_process(self.proc)


class Demo:
    """A running `busbar demo` (simulator + bridge in one process) on free ports."""

    def __init__(self, bacnet: str = "127.0.0.1:0", snmp_traps=(), snmp_informs=(), extra=()):
        traps = [a for t in snmp_traps for a in ("--snmp-trap", t)]
        traps += [a for t in snmp_informs for a in ("--snmp-inform", t)]
        traps += list(extra)
        self.journal_dir = None
        if "--alarm-journal" not in extra:
            # Each demo its own journal: alarm states must not leak from one test to the next.
            self.journal_dir = tempfile.mkdtemp(prefix="busbar-demo-")
            traps += ["--alarm-journal", str(Path(self.journal_dir) / "alarms.db")]
        self.proc = subprocess.Popen(
            [find_binary("busbar"), "demo", "--modbus", "127.0.0.1:0", "--http", "127.0.0.1:0",
             "--opcua", "127.0.0.1:0", "--bacnet", bacnet, "--snmp", "127.0.0.1:0", *traps,
             "--sim-gateway", "127.0.0.1:0", "--sim-control", "127.0.0.1:0"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.modbus = self.http = self.control = self.opcua = self.bacnet = self.snmp = None
        deadline = time.time() + 30
        while time.time() < deadline and None in (self.modbus, self.http, self.control, self.opcua, self.bacnet,
                                                   self.snmp):
            line = self.proc.stdout.readline()
            if not line:
                break
            if m := re.search(r"modbus-tcp server : 127\.0\.0\.1:(\d+)", line):
                self.modbus = int(m.group(1))
            if m := re.search(r"http api +: (http://[0-9.:]+)", line):
                self.http = m.group(1)
            if m := re.search(r"simulator control: (http://[0-9.:]+)", line):
                self.control = m.group(1)
            if m := re.search(r"opc ua server +: (opc\.tcp://[0-9.:]+/)", line):
                self.opcua = m.group(1)
            if m := re.search(r"bacnet/ip device : udp [0-9.]+:(\d+) +device instance (\d+)", line):
                self.bacnet = int(m.group(1))
                self.bacnet_instance = int(m.group(2))
            if m := re.search(r"snmp agent +: udp ([0-9.]+:\d+)", line):
                self.snmp = m.group(1)
        if None in (self.modbus, self.http, self.control, self.opcua, self.bacnet, self.snmp):
            self.stop()
            raise RuntimeError("busbar demo did not report its endpoints")
        self.map = self._export_map()

    def _export_map(self):
        out = subprocess.run([find_binary("busbar"), "export", "modbus-map", "--format", "csv"],
                             cwd=ROOT, capture_output=True, text=True, check=True)
        import csv, io
        return {row["point_id"]: row for row in csv.DictReader(io.StringIO(out.stdout))}

    def get(self, base, path):
        with urllib.request.urlopen(base + path, timeout=5) as r:
            return json.loads(r.read())

    def post(self, base, path, body):
        req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def wait_good(self, point_id, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            p = self.get(self.http, "/api/points/" + point_id)
            if p["quality"] == "good":
                return p
            time.sleep(0.2)
        raise AssertionError(f"{point_id} not good")

    def stop(self):
        Simulator.stop(self)
        if self.journal_dir:
            shutil.rmtree(self.journal_dir, ignore_errors=True)


@pytest.fixture
def demo():
    d = Demo()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def sim():
    s = Simulator()
    try:
        yield s
    finally:
        s.stop()
