"""Busbar tested by its own scenarios: `busbar-sim test` plays tests/scenarios/*.yaml to a
running `busbar run` and judges what the bridge does (polls, writes), shows (Modbus, HTTP,
BACnet/IP, OPC UA, SNMP) and announces (traps, the alarm webhook, alarm mail to the run's SMTP sink). Each scenario passes against
the bridge as configured, and fails on exactly the expectations it should against a bridge made
to misbehave: one with a server off, or with writes disabled. The writes of bridge-writes.yaml
are made during the run by real clients of each protocol (pymodbus, asyncua, bacpypes3,
net-snmp's snmpset, urllib). The reports are checked as a CI server reads them: the JUnit XML
validated against the schema of Jenkins' xunit plugin (junit-10.xsd, with xmlschema), the JSON
by Python's parser."""

import asyncio
import json
import os
import re
import struct
import subprocess
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import xmlschema

from conftest import ROOT, find_binary, stop_process

SCENARIOS = ROOT / "tests/scenarios"
TOKEN = "scenario-token-0001"
XSD_DIR = Path(os.environ.get("BUSBAR_JUNIT_XSD", Path.home() / ".cache/busbar-junit-xsd"))
HTTP = "http://127.0.0.1:25080"
ATS = "{ name: ats, profile: socomec-atys-pm, connection: gw, unit_id: 1 }"
METER = "{ name: main_meter, profile: socomec-diris-a40, connection: gw, unit_id: 2 }"
EV1 = "{ name: ev1, profile: legrand-greenup, connection: gw, unit_id: 10, points: { current_limit: { writable: true } } }"
TANKS = "{ name: tanks, profile: fafnir-visy-tanks, connection: gw, unit_id: 7 }"
SERVERS = ("modbus", "http", "bacnet", "opcua", "snmp")


def bridge_config(tmp_path, devices, off=(), writes=True, mail=False):
    """A bridge reading the scenario's site on 127.0.0.1:25020 and serving every protocol on the
    ports the scenarios probe, except the servers in `off`; with `mail`, its alarms mailed to the
    run's SMTP sink on 127.0.0.1:25025."""
    servers = {
        "modbus": '  modbus: { listen: "127.0.0.1:25502" }\n',
        "http": f'  http: {{ listen: "127.0.0.1:25080", token: {TOKEN} }}\n',
        "bacnet": '  bacnet: { listen: "127.0.0.1:25808", device_instance: 4242 }\n',
        "opcua": f'  opcua: {{ listen: "127.0.0.1:25840", none_endpoint: true, anonymous: true, anonymous_role: operator, pki_dir: {tmp_path / "pki"} }}\n',
        "snmp": f"""  snmp:
    listen: "127.0.0.1:25161"
    state_dir: {tmp_path / "snmp"}
    communities:
      - {{ name: public, access: read, sources: ["127.0.0.0/8"] }}
      - {{ name: scenario-write, access: write, sources: ["127.0.0.0/8"] }}
    traps: [{{ target: "127.0.0.1:25162", community: public }}]
""",
    }
    config = tmp_path / "bridge.yaml"
    config.write_text(f"""site: {{ name: Scenario test, id: scenario-test }}
writes: {{ enabled: {str(writes).lower()} }}
connections: [{{ name: gw, tcp: {{ host: 127.0.0.1, port: 25020 }} }}]
devices:
""" + "".join(f"  - {d}\n" for d in devices) + "servers:\n" + "".join(servers[s] for s in SERVERS if s not in off) + f"""alarms:
  journal: {tmp_path / "alarms.db"}
  webhooks: [{{ url: "http://127.0.0.1:25090/hook" }}]
""" + ("""  email:
    server: 127.0.0.1
    port: 25025
    security: none
    from: Busbar <busbar@scenario.test>
    hold_off_s: 2
    recipients: [{ to: ops@scenario.test }]
""" if mail else ""))
    return config


def retry(stop, what, deadline=40):
    """Call `what` until it returns true or the deadline passes; true when it did."""
    end = time.time() + deadline
    while time.time() < end and not stop.is_set():
        try:
            if what():
                return True
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # bacpypes3's errors derive from BaseException
            pass
        time.sleep(1)
    return False


def http_write(value):
    req = urllib.request.Request(f"{HTTP}/api/points/ev1/current_limit", method="POST",
                                 data=json.dumps({"value": value}).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read()).get("result", {}).get("outcome") == "done"


def charger_read(_=None):
    with urllib.request.urlopen(f"{HTTP}/api/points/ev1/current_limit", timeout=5) as r:
        return json.loads(r.read()).get("quality") == "good"


def modbus_write(value):
    from pymodbus.client import ModbusTcpClient
    c = ModbusTcpClient("127.0.0.1", port=25502, timeout=3, retries=0)
    try:
        c.connect()
        words = struct.unpack(">HH", struct.pack(">f", value))
        return not c.write_registers(110, list(words), device_id=2).isError()
    finally:
        c.close()


def opcua_write(value):
    from asyncua import Client, ua

    async def go():
        async with Client("opc.tcp://127.0.0.1:25840/") as c:
            ns = await c.get_namespace_index("urn:busbar:site")
            limit = c.get_node(ua.NodeId("ev1/current_limit", ns))
            await limit.write_value(ua.DataValue(ua.Variant(float(value), ua.VariantType.Double)))
            return True
    return asyncio.run(go())


def bacnet_write(value):
    from bacpypes3.app import Application
    from bacpypes3.argparse import SimpleArgumentParser
    from bacpypes3.pdu import Address
    from bacpypes3.primitivedata import ObjectIdentifier

    async def go():
        args = SimpleArgumentParser().parse_args(["--address", "127.0.0.1/8:25809", "--instance", "25809"])
        app = Application.from_args(args)
        try:
            await asyncio.sleep(1.0)
            await app.write_property(Address("127.0.0.1:25808"), ObjectIdentifier("analog-value,586005"),
                                     "presentValue", float(value), priority=8)
            return True
        finally:
            app.close()
    return asyncio.run(go())


def snmp_write(value):
    base = "1.3.6.1.4.1.32473.1.3.1"
    names = subprocess.run(["snmpwalk", "-v2c", "-c", "public", "-On", "-t", "2", "127.0.0.1:25161", f"{base}.2.2"],
                           capture_output=True, text=True, check=True).stdout
    index = re.search(rf"\.{re.escape(base)}\.2\.(2\.\d+) = STRING: \"?current_limit\"?", names).group(1)
    scale = int(subprocess.run(["snmpget", "-v2c", "-c", "public", "-Oqv", "127.0.0.1:25161", f"{base}.5.{index}"],
                               capture_output=True, text=True, check=True).stdout)
    raw = int(round(value / 10 ** scale))
    subprocess.run(["snmpset", "-v2c", "-c", "scenario-write", "-t", "5", "-r", "0", "127.0.0.1:25161",
                    f"{base}.4.{index}", "i", str(raw)], capture_output=True, text=True, check=True)
    return True


def write_through_every_protocol(stop, outcomes):
    """What a SCADA and a BMS do during bridge-writes.yaml: once the bridge reads the charger,
    the current limit through each protocol in turn (each retried until it is answered done)."""
    if not retry(stop, charger_read):
        return
    for name, write, value in (("modbus", modbus_write, 11), ("opcua", opcua_write, 12),
                               ("bacnet", bacnet_write, 14), ("snmp", snmp_write, 15), ("http", http_write, 13)):
        outcomes[name] = retry(stop, lambda: write(value), deadline=8)


def write_current_limit_later(stop, outcomes):
    """What an operator does during bridge-mains-failure.yaml: 13 A to ev1 over HTTP."""
    outcomes["http"] = retry(stop, lambda: http_write(13), deadline=30)


def run_scenario(tmp_path, name, devices, off=(), writes=True, operator=None, mail=False):
    """The simulator playing tests/scenarios/NAME.yaml, the bridge on it, and what the operator
    does meanwhile; returns (exit code, stdout, JSON report, JUnit root, operator outcomes), the
    JUnit report validated against the schema CI servers read (scripts/test fetches it)."""
    junit, report, log = tmp_path / "junit.xml", tmp_path / "report.json", tmp_path / "sim.log"
    with open(log, "w") as err:
        sim = subprocess.Popen([find_binary("busbar-sim"), "test", str(SCENARIOS / f"{name}.yaml"), "--report",
                                f"junit={junit},json={report}"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=err, text=True)
    time.sleep(0.5)
    config = bridge_config(tmp_path, devices, off, writes, mail)
    bridge = subprocess.Popen([find_binary("busbar"), "run", "--config", str(config)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop, outcomes = threading.Event(), {}
    worker = threading.Thread(target=operator, args=(stop, outcomes)) if operator else None
    if worker:
        worker.start()
    try:
        out, _ = sim.communicate(timeout=240)
    finally:
        stop.set()
        if worker:
            worker.join()
        stop_process(bridge)
    assert report.exists(), f"busbar-sim test wrote no report ({sim.returncode}): {log.read_text()[-2000:]}"
    validate_junit(junit)
    return sim.returncode, out, json.loads(report.read_text()), ET.parse(junit).getroot(), outcomes


def validate_junit(junit):
    """The JUnit report as CI servers read it: valid against Jenkins' xunit schema."""
    schemas = sorted(XSD_DIR.glob("junit-10-*.xsd"))
    assert schemas, f"no JUnit schema in {XSD_DIR} (scripts/test fetches it)"
    for xsd in schemas:
        xmlschema.XMLSchema(str(xsd)).validate(str(junit))


def assert_passed(code, out, report, junit, count):
    failed = [e for e in report["expectations"] if not e["passed"]]
    assert code == 0 and not failed, out
    assert report["passed"] is True and len(report["expectations"]) == count
    suite = junit.find("testsuite")
    assert junit.tag == "testsuites" and suite.get("tests") == str(count) and suite.get("failures") == "0"
    assert len(suite.findall("testcase")) == count and not suite.findall("testcase/failure")


def assert_failed_exactly(code, out, report, junit, expected):
    assert code == 1, out
    failed = {e["name"] for e in report["expectations"] if not e["passed"]}
    assert failed == expected, out
    suite = junit.find("testsuite")
    assert suite.get("failures") == str(len(expected))
    assert {c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None} == expected
    for name in expected:
        assert re.search(rf"FAIL +{re.escape(name)}", out), name


def names(scenario, pattern):
    """The expectation names of a scenario file that match a regex (what a broken server fails)."""
    text = (SCENARIOS / f"{scenario}.yaml").read_text()
    found = {n.strip('"') for n in re.findall(r"^  - name: (.*)$", text, re.M)}
    return {n for n in found if re.search(pattern, n)}


# bridge-mains-failure.yaml: the transfer, an alarm and a silent charger on every protocol.

MAINS_DEVICES = (ATS, METER, EV1)
SNMP_EXPECTATIONS = {"SNMP: the silent charger is offline", "trap: communication lost with the charger",
                     "trap: the transfer switch's alarm is raised"}


def test_the_bridge_passes_its_mains_failure_scenario_on_every_protocol(tmp_path):
    code, out, report, junit, _ = run_scenario(tmp_path, "bridge-mains-failure", MAINS_DEVICES,
                                               operator=write_current_limit_later, mail=True)
    assert_passed(code, out, report, junit, 15)
    kinds = " ".join(t["what"] for t in report["timeline"])
    assert "ats: event mains_lost" in kinds and "SUT wrote ev1/current_limit = 13" in kinds
    assert "traps received: 1.3.6.1.4.1.32473.0.3" in kinds, "the alarm trap is in the timeline"
    assert "mail received: From: Busbar <busbar@scenario.test>" in kinds, "the alarm mail is in the timeline"


def test_the_same_scenario_fails_on_the_snmp_expectations_when_the_agent_is_off(tmp_path):
    code, out, report, junit, _ = run_scenario(tmp_path, "bridge-mains-failure", MAINS_DEVICES, off=("snmp",),
                                               operator=write_current_limit_later, mail=True)
    assert names("bridge-mains-failure", r"^(SNMP|trap):") == SNMP_EXPECTATIONS
    assert_failed_exactly(code, out, report, junit, SNMP_EXPECTATIONS)
    offline = next(e for e in report["expectations"] if e["name"] == "SNMP: the silent charger is offline")
    assert "probe failed" in offline["detail"], offline


# bridge-comm-loss.yaml: a charger lost and back, on every protocol.

def test_a_lost_charger_shows_on_every_protocol_and_comes_back(tmp_path):
    code, out, report, junit, _ = run_scenario(tmp_path, "bridge-comm-loss", MAINS_DEVICES)
    assert_passed(code, out, report, junit, 18)
    kinds = " ".join(t["what"] for t in report["timeline"])
    assert "ev1: fault silent for 20s" in kinds


def test_the_comm_loss_scenario_fails_on_the_opcua_expectations_when_that_server_is_off(tmp_path):
    code, out, report, junit, _ = run_scenario(tmp_path, "bridge-comm-loss", MAINS_DEVICES, off=("opcua",))
    expected = names("bridge-comm-loss", r"^OPC UA:")
    assert len(expected) == 2
    assert_failed_exactly(code, out, report, junit, expected)


# bridge-delivery.yaml: a delivery followed by the bridge.

def test_a_delivery_is_followed_on_every_protocol(tmp_path):
    code, out, report, junit, _ = run_scenario(tmp_path, "bridge-delivery", (TANKS,))
    assert_passed(code, out, report, junit, 11)
    assert "tanks: event delivery" in " ".join(t["what"] for t in report["timeline"])


def test_the_delivery_scenario_fails_on_the_bacnet_expectations_when_that_server_is_off(tmp_path):
    code, out, report, junit, _ = run_scenario(tmp_path, "bridge-delivery", (TANKS,), off=("bacnet",))
    expected = names("bridge-delivery", r"^BACnet:")
    assert len(expected) == 6
    assert_failed_exactly(code, out, report, junit, expected)


# bridge-writes.yaml: writes through each protocol reaching the charger.

WRITE_DEVICES = (METER, EV1)


def test_writes_through_each_protocol_reach_the_charger(tmp_path):
    code, out, report, junit, done = run_scenario(tmp_path, "bridge-writes", WRITE_DEVICES,
                                                  operator=write_through_every_protocol)
    assert done == {"modbus": True, "opcua": True, "bacnet": True, "snmp": True, "http": True}, (done, out)
    assert_passed(code, out, report, junit, 8)
    wrote = [t["what"] for t in report["timeline"] if "SUT wrote ev1/current_limit" in t["what"]]
    assert [w.split("= ")[1].split()[0] for w in wrote][:5] == ["11", "12", "14", "15", "13"], wrote


def test_the_writes_scenario_fails_when_the_bridge_refuses_writes(tmp_path):
    code, out, report, junit, done = run_scenario(tmp_path, "bridge-writes", WRITE_DEVICES, writes=False,
                                                  operator=write_through_every_protocol)
    assert not any(done.values()), done
    assert_failed_exactly(code, out, report, junit, names("bridge-writes", r"reaches the charger"))
