"""Alarms & Conditions against a second, independent OPC UA client: node-opcua-client (from the
npm registry), run as tests/interop/opcua_js/alarms.js with its own alarm helpers. A breaker
trip in the simulator reaches its event subscription on the Server object with the condition
fields; a viewer's acknowledgeCondition is refused, an operator's is accepted, seen as
AckedState and journaled (read with Python's sqlite3) with the user and `opcua`;
addCommentCondition is journaled too; callConditionRefresh re-sends the retained trip."""

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from test_alarms_journal import Bridge, sim  # noqa: F401  (sim is a fixture)
from test_opcua_alarms import TRIP, config

HERE = Path(__file__).resolve().parent / "opcua_js"


@pytest.fixture(scope="module")
def node():
    path = shutil.which("node")
    if path is None or not (HERE / "node_modules" / "node-opcua-client").is_dir():
        pytest.fail("node and tests/interop/opcua_js/node_modules are needed (scripts/test runs npm ci there)")
    return path


def test_node_opcua_acknowledges_comments_and_refreshes(node, sim, tmp_path):
    cfg, journal, url = config(tmp_path, sim)
    bridge = Bridge(cfg)
    peer = subprocess.Popen([node, str(HERE / "alarms.js"), url, TRIP], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        steps = {}
        for line in peer.stdout:
            if not line.startswith("{"):
                continue  # node-opcua's own warnings
            msg = json.loads(line)
            assert "error" not in msg, msg["error"]
            if msg.get("ready"):
                sim.api("POST", "/api/devices/shop_breaker/events", {"event": "breaker_trip", "cause": "overload"})
            else:
                steps[msg["step"]] = msg
        assert peer.wait(timeout=30) == 0, peer.stderr.read()

        raised = steps["raised"]["event"]
        assert raised["EventType"] == "ns=0;i=10637"  # OffNormalAlarmType
        assert raised["SourceName"] == "shop_breaker/state"
        assert raised["Severity"] == "700" and raised["Retain"] == "true"
        assert raised["AckedState.Id"] == "false" and raised["EnabledState.Id"] == "true"
        assert raised["ConditionId"].endswith(f"s=alarm:{TRIP}")
        assert steps["viewer_ack"]["status"] == "BadUserAccessDenied"
        assert steps["operator_ack"]["status"] == "Good"
        acked = steps["acked"]["event"]
        assert acked["ClientUserId"] == "alice@opcua" and acked["Comment"] == "acknowledged from node-opcua"
        assert steps["comment"]["status"] == "Good"
        assert steps["commented"]["event"]["AckedState.Id"] == "true"
        refreshed = [e for e in steps["refresh"]["conditions"] if e["ConditionName"] == TRIP]
        assert len(refreshed) == 1 and refreshed[0]["AckedState.Id"] == "true"
        assert refreshed[0]["ActiveState.Id"] == "true"

        db = sqlite3.connect(journal)
        try:
            rows = db.execute("SELECT kind, user, via, comment FROM transitions WHERE alarm = ? ORDER BY seq",
                              (TRIP,)).fetchall()
        finally:
            db.close()
        assert ("acknowledged", "alice", "opcua", "acknowledged from node-opcua") in rows
        assert ("commented", "alice", "opcua", "a comment from node-opcua") in rows
        assert not [r for r in rows if r[1] == "victor"], "the viewer's attempt left no trace as an action"
    finally:
        if peer.poll() is None:
            peer.kill()
        bridge.stop()
