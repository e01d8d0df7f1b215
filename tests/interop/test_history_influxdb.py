"""History against a real influxd (Debian's influxdb 1.6, started here on free ports): the
documented schema arrives; an InfluxDB outage loses nothing (the buffer is replayed in order
when it is back); a kill -9 of the bridge during the outage loses nothing either."""

import json
import os
import shutil
import signal
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


def start_demo(influxd, buffer_dir):
    http = free_port()
    proc = subprocess.Popen(
        [find_binary("busbar"), "demo", "--modbus", "127.0.0.1:0", "--http", f"127.0.0.1:{http}", "--opcua",
         "127.0.0.1:0", "--bacnet", "127.0.0.1:0", "--snmp", "127.0.0.1:0", "--sim-gateway", "127.0.0.1:0",
         "--sim-control", "127.0.0.1:0", "--influxdb", f"{influxd.url}?db=busbar", "--history-buffer",
         str(buffer_dir)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def v1_times(influxd):
    rows = influxd.values("SELECT v1 FROM meter WHERE device='main_meter' AND v1 > 0")
    return [r[0] for r in rows]


def epoch(t):
    from datetime import datetime
    return datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()


def test_the_documented_schema_arrives(influxd, tmp_path):
    proc, base = start_demo(influxd, tmp_path / "buf")
    try:
        assert wait_until(lambda: len(v1_times(influxd)) >= 3, 20)
        names = {r[0] for r in influxd.values("SHOW MEASUREMENTS")}
        assert {"meter", "transfer_switch", "tank_gauge", "charger", "device_status"} <= names, names
        tags = {r[0] for r in influxd.values("SHOW TAG KEYS FROM tank_gauge")}
        assert {"site", "device", "profile", "tank"} <= tags, tags
        rows = influxd.values("SELECT volume FROM tank_gauge WHERE device='tanks' AND tank='1' LIMIT 1")
        assert rows and rows[0][1] > 0
        status = influxd.values("SELECT online FROM device_status WHERE device='ats' LIMIT 1")
        assert status and status[0][1] is True
        site = influxd.values("SHOW TAG VALUES FROM meter WITH KEY = site")
        assert [r[1] for r in site] == ["station-nord"]
        assert metric(base, "busbar_history_written_lines_total") > 0
    finally:
        proc.kill()
        proc.wait()


def test_an_outage_and_a_kill_9_lose_nothing(influxd, tmp_path):
    buffer_dir = tmp_path / "buf"
    proc, base = start_demo(influxd, buffer_dir)
    try:
        assert wait_until(lambda: len(v1_times(influxd)) >= 3, 20)
        influxd.stop()
        outage_start = time.time()
        time.sleep(5)
        assert metric(base, "busbar_history_queued_lines") > 0, "buffered while InfluxDB is down"
        assert metric(base, "busbar_history_retries_total") > 0
        # Back: everything buffered arrives, in order, once.
        influxd.start()
        assert wait_until(lambda: metric(base, "busbar_history_queued_lines") == 0, 40)
        times = [epoch(t) for t in v1_times(influxd)]
        assert times == sorted(times) and len(set(times)) == len(times)
        during = [t for t in times if outage_start <= t <= outage_start + 5]
        assert len(during) >= 4, f"the 5 s of the outage were kept: {len(during)} samples"
        # Second outage, and the bridge is killed while buffering.
        influxd.stop()
        second = time.time()
        time.sleep(4)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = time.time()
        assert any(buffer_dir.iterdir()), "the buffer is on disk"
        influxd.start()
        proc, base = start_demo(influxd, buffer_dir)
        assert wait_until(lambda: metric(base, "busbar_history_queued_lines") == 0 and
                          len([t for t in v1_times(influxd) if second <= epoch(t) <= killed]) >= 3, 40)
        times = [epoch(t) for t in v1_times(influxd)]
        assert len(set(times)) == len(times)
        replayed = [t for t in times if second <= t <= killed]
        assert len(replayed) >= 3, f"samples of the outage before the kill were replayed: {len(replayed)}"
    finally:
        proc.kill()
        proc.wait()


def test_the_v2_write_path_against_victoriametrics(tmp_path):
    """VictoriaMetrics accepts /api/v2/write?org=&bucket= (the InfluxDB 2.x API); metric names
    become `<measurement>_<field>` and tags become labels."""
    port = free_port()
    vm = subprocess.Popen([shutil.which("victoria-metrics") or "victoria-metrics",
                           f"-storageDataPath={tmp_path / 'vm'}", f"-httpListenAddr=127.0.0.1:{port}",
                           "-retentionPeriod=100y", "-search.latencyOffset=0s"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    http = free_port()
    proc = None
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: urllib.request.urlopen(url + "/health", timeout=1).status == 200, 20)
        proc = subprocess.Popen(
            [find_binary("busbar"), "demo", "--modbus", "127.0.0.1:0", "--http", f"127.0.0.1:{http}", "--opcua",
             "127.0.0.1:0", "--bacnet", "127.0.0.1:0", "--snmp", "127.0.0.1:0", "--sim-gateway", "127.0.0.1:0",
             "--sim-control", "127.0.0.1:0", "--influxdb", url, "--influx-org", "site", "--influx-bucket", "busbar",
             "--influx-token", "not-checked", "--history-buffer", str(tmp_path / "buf")],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def series():
            q = urllib.parse.urlencode({"query": 'meter_v1{device="main_meter"}'})
            with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=5) as r:
                return json.loads(r.read())["data"]["result"]

        assert wait_until(lambda: len(series()) == 1, 30)
        labels = series()[0]["metric"]
        assert labels["site"] == "station-nord" and labels["profile"] == "socomec-diris-a40", labels
        assert 180 < float(series()[0]["value"][1]) < 260
        assert metric(f"http://127.0.0.1:{http}", "busbar_history_refused_lines_total") == 0
    finally:
        if proc:
            proc.kill()
            proc.wait()
        vm.terminate()
        vm.wait()
