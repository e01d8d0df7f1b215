"""History against a real influxd (Debian's influxdb 1.6, started here on free ports): the
documented schema arrives; an InfluxDB outage loses nothing (the buffer is replayed in order
when it is back); a kill -9 of the bridge during the outage loses nothing either."""

import json
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request

from conftest import ROOT, find_binary
from influx import free_port, influxd, metric, start_demo, wait_until  # noqa: F401 (influxd is a fixture)


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


def test_a_full_buffer_drops_the_oldest_counts_and_logs_it(influxd, tmp_path):
    """InfluxDB away and a 64 KiB quota: the buffer stays within it, the oldest lines go, the
    drop is counted and logged; when InfluxDB is back the newest samples arrive."""
    influxd.stop()
    log = open(tmp_path / "bridge.log", "w")
    started = time.time()
    proc, base = start_demo(influxd, tmp_path / "buf", extra=["--history-quota-mb", "0.0625"], stderr=log)
    try:
        assert wait_until(lambda: (metric(base, "busbar_history_dropped_lines_total") or 0) > 0, 60)
        quota = 64 * 1024
        assert metric(base, "busbar_history_buffer_bytes") <= quota + 8 * 1024, "within the quota (and one segment)"
        on_disk = sum(f.stat().st_size for f in (tmp_path / "buf").iterdir())
        assert on_disk <= quota + 8 * 1024, on_disk
        log.flush()
        text = (tmp_path / "bridge.log").read_text()
        assert "over its quota" in text and "busbar_history_dropped_lines_total" in text, text[-2000:]
        influxd.start()
        influxd.query("CREATE DATABASE busbar", db=None, method="POST")
        assert wait_until(lambda: metric(base, "busbar_history_queued_lines") == 0 and len(v1_times(influxd)) > 3, 40)
        times = [epoch(t) for t in v1_times(influxd)]
        assert min(times) > started + 1, "the first seconds were dropped, not the last"
        assert max(times) > time.time() - 10, "the newest samples arrived"
    finally:
        proc.kill()
        proc.wait()
        log.close()


def test_alarm_transitions_arrive_as_events(influxd, tmp_path):
    """A breaker trip raised, acknowledged over HTTP: both transitions are lines of the `alarm`
    measurement with their tags and the operator's name."""
    control = free_port()
    proc, base = start_demo(influxd, tmp_path / "buf", sim_control=f"127.0.0.1:{control}",
                            extra=("--alarm-journal", str(tmp_path / "alarms.db")))
    alarm = "device/shop_breaker/state"

    def post(url, body, headers=()):
        req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **dict(headers)})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def events():
        return influxd.values(f"SELECT kind, severity, message, acknowledged, \"user\" FROM alarm WHERE alarm = '{alarm}'")

    try:
        assert wait_until(lambda: len(v1_times(influxd)) >= 1, 20)
        post(f"http://127.0.0.1:{control}/api/devices/shop_breaker/events", {"event": "breaker_trip", "cause": "overload"})
        assert wait_until(lambda: len(events()) >= 1, 20), events()
        post(base + "/api/alarms/acknowledge", {"id": alarm, "user": "carol", "comment": "on site"},
             headers=[("Authorization", "Bearer demo-token-change-me-0001")])
        assert wait_until(lambda: len(events()) >= 2, 20), events()
        rows = events()
        assert [r[1] for r in rows] == ["raised", "acknowledged"], rows
        assert rows[0][2] == "major" and rows[0][3] == "shop_breaker Breaker state: tripped", rows
        assert rows[1][4] is True and rows[1][5] == "carol", rows
        tags = {r[0] for r in influxd.values("SHOW TAG KEYS FROM alarm")}
        assert {"site", "device", "alarm", "source", "severity", "kind"} <= tags, tags
    finally:
        proc.kill()
        proc.wait()
