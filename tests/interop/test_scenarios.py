"""Busbar tested by its own scenarios: `busbar-sim test` plays tests/scenarios/*.yaml to a
running `busbar run` and judges what the bridge does (polls, writes), shows (Modbus, HTTP,
BACnet/IP, OPC UA, SNMP) and announces (traps, the alarm webhook). The same scenario against a bridge whose SNMP server is off fails on
exactly the SNMP expectations. The reports are checked as a CI server reads them: the JUnit XML
validated against the schema of Jenkins' xunit plugin (junit-10.xsd, with xmlschema), the JSON
by Python's parser."""

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import xmlschema

from conftest import ROOT, find_binary

SCENARIO = ROOT / "tests/scenarios/bridge-mains-failure.yaml"
TOKEN = "scenario-token-0001"
XSD_DIR = Path(os.environ.get("BUSBAR_JUNIT_XSD", Path.home() / ".cache/busbar-junit-xsd"))
SNMP_EXPECTATIONS = {"SNMP: the silent charger is offline", "trap: communication lost with the charger",
                     "trap: the transfer switch's alarm is raised"}


def bridge_config(tmp_path, snmp=True):
    snmp_section = """  snmp:
    listen: "127.0.0.1:25161"
    state_dir: {state}
    communities: [{{ name: public, access: read, sources: ["127.0.0.0/8"] }}]
    traps: [{{ target: "127.0.0.1:25162", community: public }}]
""".format(state=tmp_path / "snmp") if snmp else ""
    config = tmp_path / "bridge.yaml"
    config.write_text(f"""site: {{ name: Scenario test, id: scenario-test }}
writes: {{ enabled: true }}
connections: [{{ name: gw, tcp: {{ host: 127.0.0.1, port: 25020 }} }}]
devices:
  - {{ name: ats, profile: socomec-atys-pm, connection: gw, unit_id: 1 }}
  - {{ name: main_meter, profile: socomec-diris-a40, connection: gw, unit_id: 2 }}
  - {{ name: ev1, profile: legrand-greenup, connection: gw, unit_id: 10, points: {{ current_limit: {{ writable: true }} }} }}
servers:
  modbus: {{ listen: "127.0.0.1:25502" }}
  http: {{ listen: "127.0.0.1:25080", token: {TOKEN} }}
  bacnet: {{ listen: "127.0.0.1:25808", device_instance: 4242 }}
  opcua: {{ listen: "127.0.0.1:25840", none_endpoint: true, anonymous: true, pki_dir: {tmp_path / "pki"} }}
{snmp_section}alarms:
  journal: {tmp_path / "alarms.db"}
  webhooks: [{{ url: "http://127.0.0.1:25090/hook" }}]
""")
    return config


def write_current_limit_later(stop):
    """What an operator does during the run: 13 A to ev1 over the bridge's HTTP API, once the
    bridge answers (retried until it does)."""
    deadline = time.time() + 30
    while time.time() < deadline and not stop.is_set():
        try:
            req = urllib.request.Request("http://127.0.0.1:25080/api/points/ev1/current_limit", method="POST",
                                         data=json.dumps({"value": 13}).encode(),
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(req, timeout=5) as r:
                if json.loads(r.read()).get("result", {}).get("outcome") == "done":
                    return
        except Exception:
            pass
        time.sleep(1)


def run_scenario(tmp_path, snmp):
    """The simulator under test, the bridge on it, and the write an operator makes; returns
    (exit code, stdout, JSON report, JUnit root), the JUnit report validated against the schema
    CI servers read (scripts/test fetches it)."""
    junit, report, log = tmp_path / "junit.xml", tmp_path / "report.json", tmp_path / "sim.log"
    with open(log, "w") as err:
        sim = subprocess.Popen([find_binary("busbar-sim"), "test", str(SCENARIO), "--report",
                                f"junit={junit},json={report}"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=err, text=True)
    time.sleep(0.5)
    bridge = subprocess.Popen([find_binary("busbar"), "run", "--config", str(bridge_config(tmp_path, snmp))],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = threading.Event()
    writer = threading.Thread(target=write_current_limit_later, args=(stop,))
    writer.start()
    try:
        out, _ = sim.communicate(timeout=240)
    finally:
        stop.set()
        writer.join()
        bridge.send_signal(signal.SIGINT)
        try:
            bridge.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bridge.kill()
    assert report.exists(), f"busbar-sim test wrote no report ({sim.returncode}): {log.read_text()[-2000:]}"
    schemas = sorted(XSD_DIR.glob("junit-10-*.xsd"))
    assert schemas, f"no JUnit schema in {XSD_DIR} (scripts/test fetches it)"
    for xsd in schemas:
        xmlschema.XMLSchema(str(xsd)).validate(str(junit))
    return sim.returncode, out, json.loads(report.read_text()), ET.parse(junit).getroot()


def test_the_bridge_passes_its_mains_failure_scenario_on_every_protocol(tmp_path):
    code, out, report, junit = run_scenario(tmp_path, snmp=True)
    failed = [e for e in report["expectations"] if not e["passed"]]
    assert code == 0 and not failed, out
    assert report["passed"] is True and len(report["expectations"]) == 14
    kinds = " ".join(t["what"] for t in report["timeline"])
    assert "ats: event mains_lost" in kinds and "SUT wrote ev1/current_limit = 13" in kinds
    assert "traps received: 1.3.6.1.4.1.32473.0.3" in kinds, "the alarm trap is in the timeline"
    suite = junit.find("testsuite")
    assert junit.tag == "testsuites" and suite.get("tests") == "14" and suite.get("failures") == "0"
    assert len(suite.findall("testcase")) == 14 and not suite.findall("testcase/failure")


def test_the_same_scenario_fails_on_the_snmp_expectations_when_the_agent_is_off(tmp_path):
    code, out, report, junit = run_scenario(tmp_path, snmp=False)
    assert code == 1, out
    failed = {e["name"] for e in report["expectations"] if not e["passed"]}
    assert failed == SNMP_EXPECTATIONS, out
    offline = next(e for e in report["expectations"] if e["name"] == "SNMP: the silent charger is offline")
    assert "probe failed" in offline["detail"], offline
    suite = junit.find("testsuite")
    assert suite.get("failures") == "3"
    failures = {c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None}
    assert failures == SNMP_EXPECTATIONS
    assert re.search(r"FAIL +SNMP: the silent charger is offline", out)
