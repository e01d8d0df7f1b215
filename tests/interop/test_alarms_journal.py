"""The alarm journal survives kill -9: a real busbar-sim, `busbar run` with alarms over HTTP,
SIGKILL of the bridge right after a transition is visible, a restart on the same journal, and
the journal read back with Python's own sqlite3 module (not our code)."""

import json
import re
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, Simulator, find_binary, stop_process

TOKEN = "alarm-test-token-0001"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bridge:
    """`busbar run` on a config; SIGKILL or SIGINT to stop it."""

    def __init__(self, config):
        self.proc = subprocess.Popen([find_binary("busbar"), "run", "--config", str(config)], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.http = None
        deadline = time.time() + 30
        while time.time() < deadline and self.http is None:
            line = self.proc.stdout.readline()
            if not line:
                break
            if m := re.search(r"http api +: (http://[0-9.:]+)", line):
                self.http = m.group(1)
        if self.http is None:
            self.proc.kill()
            raise RuntimeError("busbar run did not report its HTTP endpoint")

    def get(self, path):
        with urllib.request.urlopen(self.http + path, timeout=5) as r:
            return json.loads(r.read())

    def post(self, path, body):
        req = urllib.request.Request(self.http + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def wait_alarm(self, alarm, cond, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [a for a in self.get("/api/alarms/all") if a["id"] == alarm]
            if found and cond(found[0]):
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"{alarm}: condition not reached; listed: {self.get('/api/alarms')}")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        stop_process(self.proc)


@pytest.fixture
def sim():
    s = Simulator()
    yield s
    s.stop()


def write_config(tmp_path, sim, name, alarms_extra=""):
    """`busbar run`'s config: the simulated ATS and shop breaker, HTTP with the token, alarms
    journaled in tmp_path (plus `alarms_extra`, indented YAML under `alarms:`)."""
    config = tmp_path / "bridge.yaml"
    config.write_text(f"""site: {{ name: {name}, id: {name.lower().replace(' ', '-')} }}
writes: {{ enabled: true }}
connections: [{{ name: gw, tcp: {{ host: 127.0.0.1, port: {sim.port} }} }}]
devices:
  - {{ name: ats, profile: socomec-atys-pm, connection: gw, unit_id: 1, poll_interval_ms: 200 }}
  - {{ name: shop_breaker, profile: legrand-dpx3, connection: gw, unit_id: 14, poll_interval_ms: 200 }}
servers:
  http: {{ listen: "127.0.0.1:{free_port()}", token: {TOKEN} }}
alarms:
  journal: {tmp_path / "alarms.db"}
{alarms_extra}""")
    return config, tmp_path / "alarms.db"


def kinds(journal, alarm):
    """The journal's transitions of one alarm, oldest first, read by Python's sqlite3."""
    db = sqlite3.connect(journal)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return [r[0] for r in db.execute("SELECT kind FROM transitions WHERE alarm = ? ORDER BY seq", (alarm,))]
    finally:
        db.close()


def test_the_journal_survives_kill_9_with_nothing_lost_or_doubled(sim, tmp_path):
    config, journal = write_config(tmp_path, sim, "Kill")
    trip = "device/shop_breaker/state"
    mains = "device/ats/source1_state"
    bridge = Bridge(config)
    try:
        sim.api("POST", "/api/devices/shop_breaker/events", {"event": "breaker_trip", "cause": "overload"})
        raised = bridge.wait_alarm(trip, lambda a: a["state"]["active"])
        assert raised["severity"] == "major" and raised["message"] == "shop_breaker Breaker state: tripped"
        acked = bridge.post("/api/alarms/acknowledge", {"id": trip, "user": "bob", "comment": "reset pending"})
        assert acked["kind"] == "acknowledged" and acked["actor"]["user"] == "bob"
        bridge.kill9()
        # What was announced is in the file, once.
        assert kinds(journal, trip) == ["raised", "acknowledged"]

        bridge = Bridge(config)
        restored = bridge.wait_alarm(trip, lambda a: a["state"]["active"])
        assert restored["state"]["acknowledged"] is True
        # Mains lost, and the bridge killed as soon as the alarm is visible.
        sim.api("POST", "/api/devices/ats/events", {"event": "mains_lost"})
        bridge.wait_alarm(mains, lambda a: a["state"]["active"])
        bridge.kill9()
        assert kinds(journal, mains) == ["raised"]

        bridge = Bridge(config)
        bridge.wait_alarm(mains, lambda a: a["state"]["active"] and not a["state"]["acknowledged"])
        time.sleep(1.0)  # a few evaluation passes over fresh values after the restart
        assert kinds(journal, mains) == ["raised"], "re-evaluation raised nothing twice"
        assert kinds(journal, trip) == ["raised", "acknowledged"]
        sim.api("POST", "/api/devices/ats/events", {"event": "mains_restored"})
        bridge.wait_alarm(mains, lambda a: not a["state"]["active"])
        assert kinds(journal, mains) == ["raised", "cleared"]
        history = bridge.get(f"/api/alarms/history?alarm={mains}")
        assert [t["kind"] for t in history] == ["cleared", "raised"]
        with pytest.raises(urllib.error.HTTPError) as e:
            bridge.post("/api/alarms/acknowledge", {"id": trip, "user": "bob"})
        assert e.value.code == 409
    finally:
        bridge.stop()
