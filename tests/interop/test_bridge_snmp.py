"""The bridge's SNMP agent against net-snmp's tools (snmpbulkwalk, snmpget, snmpset, snmptrapd,
snmptranslate) and smilint: the MIB matches the agent OID for OID, v3 authPriv works and wrong
keys are refused, SETs reach the simulated device or fail with the right status, and traps
arrive when a device goes silent and comes back, and when an alarm is raised and acknowledged."""

import json
import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, Demo, find_binary

NPM_MIBS = Path(os.environ.get("BUSBAR_IETF_MIBS", Path.home() / ".cache/busbar-npm/node_modules/net-snmp/lib/mibs"))
MIBDIRS = f"{NPM_MIBS}:{ROOT / 'mibs'}"
ROOT_OID = "1.3.6.1.4.1.32473"
V3 = ["-v3", "-l", "authPriv", "-u", "busbar", "-a", "SHA-256", "-A", "demo-auth-pass", "-x", "AES", "-X",
      "demo-priv-pass"]


def snmp(tool, *args, check=True, mibs="SNMPv2-MIB:BUSBAR-MIB"):
    env = dict(os.environ, MIBDIRS=MIBDIRS, SNMP_PERSISTENT_DIR=tempfile.gettempdir() + "/busbar-snmp-client")
    r = subprocess.run([tool, "-m", mibs, *args], capture_output=True, text=True, env=env, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"{tool} {args}: {r.stderr}")
    return r


def walk(demo, *extra):
    return snmp("snmpbulkwalk", "-v2c", "-c", "public", "-Cr25", *extra, demo.snmp, ROOT_OID).stdout.splitlines()


def test_the_shipped_mib_is_the_agents_and_compiles_clean():
    exported = subprocess.run([find_binary("busbar"), "export", "mib"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout
    assert (ROOT / "mibs/BUSBAR-MIB.txt").read_text() == exported, "mibs/BUSBAR-MIB.txt is `busbar export mib`"
    lint = subprocess.run(["smilint", "-l", "6", "-s", str(ROOT / "mibs/BUSBAR-MIB.txt")], capture_output=True,
                          text=True, env=dict(os.environ, SMIPATH=str(NPM_MIBS)))
    assert lint.stdout + lint.stderr == "", "smilint -l 6 is silent"


def test_bulkwalk_with_the_mib_gives_names_and_types(demo):
    demo.wait_good("main_meter/v1")
    demo.wait_good("tanks/tank1.volume")
    lines = walk(demo)
    text = "\n".join(lines)
    assert "BUSBAR-MIB::busbarDeviceName.1 = STRING: ats" in text
    assert re.search(r"BUSBAR-MIB::busbarDeviceCommStatus\.2 = INTEGER: online\(1\)", text)
    assert re.search(r"BUSBAR-MIB::busbarDeviceFailures\.2 = Counter32: \d+", text)
    volts = re.search(r"BUSBAR-MIB::busbarMeterVoltage\.2 = INTEGER: (\d+\.\d)\n", text + "\n")
    assert volts and 200 < float(volts.group(1)) < 260, "DISPLAY-HINT d-1 shows volts with one decimal"
    assert re.search(r"BUSBAR-MIB::busbarTankProduct\.7\.1 = STRING: \w+", text)
    assert re.search(r"BUSBAR-MIB::busbarPointQuality\.2\.8 = INTEGER: good\(1\)", text)
    assert re.search(r"BUSBAR-MIB::busbarAtsPosition\.1 = STRING: position_\d", text)
    sysname = snmp("snmpget", "-v2c", "-c", "public", demo.snmp, "sysName.0").stdout
    assert "STRING: Station Nord" in sysname


def alarm_action(demo, action, alarm, user="qa"):
    req = urllib.request.Request(demo.http + f"/api/alarms/{action}", method="POST",
                                 data=json.dumps({"id": alarm, "user": user}).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer demo-token-change-me-0001"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def test_every_served_oid_is_declared_with_its_type_and_every_object_is_served(demo):
    demo.wait_good("main_meter/v1")
    # One alarm out of service, so that busbarAlarmTable has a row to serve.
    alarm_action(demo, "disable", "communication/ev4")
    served = {}  # object name -> served type
    for line in walk(demo):
        if "No more variables left" in line:
            continue  # endOfMibView after the last instance
        m = re.match(r"(\S+)::(\w+)\.[\d.]+ = (\w+):", line)
        assert m, f"an OID the MIB does not name: {line}"
        assert m.group(1) == "BUSBAR-MIB"
        served.setdefault(m.group(2), set()).add(m.group(3))
    # Every accessible object the MIB declares, with its SYNTAX, from net-snmp's own parser.
    tree = snmp("snmptranslate", "-Tp", "-IR", "busbarMIB").stdout
    declared = {m.group(2): m.group(1) for m in re.finditer(r"\+-- -R[W-]- +(\w+)\s+(\w+)\(", tree)}
    assert declared, tree[:500]
    wire = {"DisplayString": "STRING", "String": "STRING", "Integer32": "INTEGER", "INTEGER": "INTEGER",
            "EnumVal": "INTEGER", "Counter": "Counter32", "Counter32": "Counter32"}
    for name, syntax in declared.items():
        assert name in served, f"{name} is declared but never served"
        expected = wire.get(syntax, "INTEGER")
        assert served[name] == {expected}, f"{name}: declared {syntax}, served {served[name]}"
    assert set(served) <= set(declared), set(served) - set(declared)


def test_v3_auth_priv_and_refusals(demo):
    ok = snmp("snmpget", *V3, demo.snmp, "sysDescr.0", "busbarSiteName.0").stdout
    assert "Busbar" in ok and "Station Nord" in ok
    wrong = snmp("snmpget", *V3[:-4], "-x", "AES", "-X", "not-the-priv-key", "-A", "not-the-auth-key", "-t", "1",
                 "-r", "0", demo.snmp, "sysDescr.0", check=False)
    assert wrong.returncode != 0 and "Authentication failure" in wrong.stderr
    plain = snmp("snmpget", "-v3", "-l", "noAuthNoPriv", "-u", "busbar", "-t", "1", "-r", "0", demo.snmp,
                 "sysDescr.0", check=False)
    assert plain.returncode != 0 and "authorizationError" in (plain.stdout + plain.stderr), "noAuthNoPriv is off"
    nobody = snmp("snmpget", "-v2c", "-c", "private", "-t", "1", "-r", "0", demo.snmp, "sysDescr.0", check=False)
    assert nobody.returncode != 0 and "Timeout" in nobody.stderr, "an unknown community gets no answer"


def point_index(demo, device, point):
    names = snmp("snmpbulkwalk", "-v2c", "-c", "public", "-Cr50", demo.snmp, "busbarPointName").stdout
    devices = snmp("snmpbulkwalk", "-v2c", "-c", "public", "-Cr50", demo.snmp, "busbarDeviceName").stdout
    d = re.search(rf"busbarDeviceName\.(\d+) = STRING: {device}\n", devices).group(1)
    k = re.search(rf"busbarPointName\.{d}\.(\d+) = STRING: {re.escape(point)}\n", names).group(1)
    return f"{d}.{k}"


def test_set_reaches_the_simulated_device_or_fails_with_the_right_status(demo):
    demo.wait_good("ev1/current_limit")
    idx = point_index(demo, "ev1", "current_limit")
    scale = int(snmp("snmpget", "-v2c", "-c", "public", "-Oqv", demo.snmp, f"busbarPointScale.{idx}").stdout)
    raw = int(round(13.0 / 10 ** scale))
    snmp("snmpset", *V3, demo.snmp, f"busbarPointValue.{idx}", "i", str(raw))
    assert demo.get(demo.control, "/api/devices/ev1")["truth"]["current_limit"]["value"] == 13.0
    out = snmp("snmpset", *V3, demo.snmp, f"busbarPointValue.{idx}", "i", str(raw * 10), check=False)
    assert "wrongValue" in out.stderr, "130 A is outside the point's range"
    # Without the MIB, so that snmpset itself does not refuse the wrong type.
    out = snmp("snmpset", *V3, demo.snmp, f".{ROOT_OID}.1.3.1.4.{idx}", "s", "13", check=False, mibs="")
    assert "wrongType" in out.stderr
    ro = point_index(demo, "main_meter", "v1")
    out = snmp("snmpset", *V3, demo.snmp, f"busbarPointValue.{ro}", "i", "1", check=False)
    assert "notWritable" in out.stderr
    out = snmp("snmpset", "-v2c", "-c", "public", demo.snmp, f"busbarPointValue.{idx}", "i", str(raw), check=False)
    assert "noAccess" in out.stderr or "authorizationError" in out.stderr, "public is read-only"
    # A silent device: the SET fails at commit.
    silent = point_index(demo, "ev2", "current_limit")
    demo.post(demo.control, "/api/devices/ev2/faults", {"fault": "silent"})
    try:
        out = snmp("snmpset", *V3, "-t", "10", "-r", "0", demo.snmp, f"busbarPointValue.{silent}", "i", str(raw),
                   check=False)
        assert "commitFailed" in out.stderr, out.stderr
    finally:
        urllib.request.urlopen(urllib.request.Request(demo.control + "/api/devices/ev2/faults", method="DELETE"),
                               timeout=5)


def start_trapd(tmp_path, conf, log_name):
    """snmptrapd on a free UDP port of 127.0.0.1 with `conf`, logging decoded with BUSBAR-MIB;
    returns the process, its port and its log file."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "trapd.conf").write_text(conf)
    log = tmp_path / log_name
    env = dict(os.environ, MIBDIRS=MIBDIRS, SNMP_PERSISTENT_DIR=str(tmp_path / "persist"))
    trapd = subprocess.Popen(["snmptrapd", "-f", "-C", "-c", str(tmp_path / "trapd.conf"), "-m",
                              "SNMPv2-MIB:BUSBAR-MIB", "-Lf", str(log), f"udp:127.0.0.1:{port}"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return trapd, port, log


def logged(log, pattern, timeout):
    """Whether snmptrapd's `log` shows `pattern` within `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if log.exists() and re.search(pattern, log.read_text()):
            return True
        time.sleep(0.2)
    return False


def test_traps_when_a_device_goes_silent_and_comes_back(tmp_path):
    trapd, port, log = start_trapd(tmp_path, "authCommunity log public\n", "traps.log")
    try:
        time.sleep(1.0)
        demo = Demo(snmp_traps=[f"127.0.0.1:{port}"])
        try:
            assert logged(log, r"coldStart", 10), "coldStart at start-up"
            demo.wait_good("ev3/state")
            demo.post(demo.control, "/api/devices/ev3/faults", {"fault": "silent"})
            assert logged(log, r"busbarCommLost.*busbarDeviceName\.\d+ = STRING: ev3.*offline", 15), log.read_text()
            urllib.request.urlopen(urllib.request.Request(demo.control + "/api/devices/ev3/faults",
                                                          method="DELETE"), timeout=5)
            assert logged(log, r"busbarCommRestored.*STRING: ev3.*online", 20), log.read_text()
        finally:
            demo.stop()
    finally:
        trapd.terminate()
        trapd.wait()


def test_a_flood_of_malformed_datagrams_never_stops_it(demo):
    host, port = demo.snmp.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        junk = [b"", b"\x30", b"\x30\x82\xff\xff", b"\x30\x03\x02\x01\x09", bytes(range(256)) * 5,
                b"\x30\x29\x02\x01\x01\x04\x06public\xa0\x1c\x02\x04\x7f\xff\xff\xff\x02\x01\x00\x02\x01\x00\x30\x0e"
                b"\x30\x0c\x06\x08\x2b\x06\x01\x02\x01\x01\x05\x00\x05\xff"]
        for i in range(3000):
            raw.sendto(junk[i % len(junk)] + bytes([i % 256]) * (i % 7), (host, int(port)))
    out = snmp("snmpget", "-v2c", "-c", "public", demo.snmp, "sysName.0").stdout
    assert "Station Nord" in out


def test_v3_informs_are_retried_until_snmptrapd_acknowledges(tmp_path):
    """The inform receiver is down when the device goes silent; it comes up later and still
    gets busbarCommLost, authenticated and encrypted with the user's keys."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "trapd.conf").write_text(
        "createUser busbar SHA-256 demo-auth-pass AES demo-priv-pass\nauthUser log busbar priv\n")
    log = tmp_path / "informs.log"
    env = dict(os.environ, MIBDIRS=MIBDIRS, SNMP_PERSISTENT_DIR=str(tmp_path / "persist"))
    demo = Demo(snmp_informs=[f"127.0.0.1:{port}"])
    trapd = None
    try:
        demo.wait_good("ev4/state")
        demo.post(demo.control, "/api/devices/ev4/faults", {"fault": "silent"})
        time.sleep(4)  # the first tries find nobody
        trapd = subprocess.Popen(["snmptrapd", "-f", "-C", "-c", str(tmp_path / "trapd.conf"), "-m",
                                  "SNMPv2-MIB:BUSBAR-MIB", "-Lf", str(log), f"udp:127.0.0.1:{port}"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            if log.exists() and re.search(r"busbarCommLost.*STRING: ev4", log.read_text()):
                break
            time.sleep(0.3)
        assert re.search(r"busbarCommLost.*STRING: ev4", log.read_text()), log.read_text()
    finally:
        demo.stop()
        if trapd:
            trapd.terminate()
            trapd.wait()


def test_alarm_transitions_are_traps_snmptrapd_decodes_with_the_mib(tmp_path):
    """A breaker trips: busbarAlarmRaised with its objects; acknowledged over HTTP:
    busbarAlarmAcknowledged naming the user; snmptrapd translates both with BUSBAR-MIB."""
    trapd, port, log = start_trapd(tmp_path, "authCommunity log public\n", "traps.log")
    try:
        time.sleep(1.0)
        demo = Demo(snmp_traps=[f"127.0.0.1:{port}"], extra=("--alarm-journal", str(tmp_path / "alarms.db")))
        try:
            demo.wait_good("shop_breaker/state")
            demo.post(demo.control, "/api/devices/shop_breaker/events", {"event": "breaker_trip", "cause": "overload"})
            assert logged(log, r"busbarAlarmRaised.*busbarAlarmEventId\.0 = STRING: device/shop_breaker/state"
                            r".*busbarAlarmEventSeverity\.0 = INTEGER: 700"
                            r".*busbarAlarmEventMessage\.0 = STRING: shop_breaker Breaker state: tripped", 15), \
                log.read_text()
            req = urllib.request.Request(demo.http + "/api/alarms/acknowledge", method="POST",
                                         data=json.dumps({"id": "device/shop_breaker/state", "user": "erin"}).encode(),
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": "Bearer demo-token-change-me-0001"})
            urllib.request.urlopen(req, timeout=5)
            assert logged(log, r"busbarAlarmAcknowledged.*STRING: device/shop_breaker/state.*busbarAlarmEventUser\.0 = STRING: erin",
                            15), log.read_text()
        finally:
            demo.stop()
    finally:
        trapd.terminate()
        trapd.wait()


def alarm_rows(demo):
    """busbarAlarmTable as {alarm id: {column: value}}, walked with the MIB."""
    out = snmp("snmpbulkwalk", "-v2c", "-c", "public", "-Cr50", demo.snmp, "busbarAlarmTable").stdout
    cells = {}
    for m in re.finditer(r"BUSBAR-MIB::busbarAlarm(\w+)\.(\d+) = \w+: (.*)", out):
        cells.setdefault(m.group(2), {})[m.group(1)] = m.group(3)
    return {row["Id"]: dict(row, index=n) for n, row in cells.items() if "Id" in row}


def test_mains_lost_is_a_row_of_the_alarm_table_a_manager_acknowledges_by_set(tmp_path):
    """mains_lost: the transfer switch's alarm is a row of busbarAlarmTable; the read-only
    community cannot acknowledge it and false(2) is refused; the v3 user acknowledges it with
    busbarAlarmAckState = true(1), and the journal names that user and SNMP; after
    mains_restored the alarm is quiet and leaves the table."""
    alarm = "device/ats/source1_state"
    demo = Demo(extra=("--alarm-journal", str(tmp_path / "alarms.db")))
    try:
        demo.wait_good("ats/source1_state")
        demo.post(demo.control, "/api/devices/ats/events", {"event": "mains_lost"})
        deadline = time.time() + 15
        while alarm not in (rows := alarm_rows(demo)) and time.time() < deadline:
            time.sleep(0.3)
        row = rows.get(alarm)
        assert row, rows
        assert row["Active"] == "true(1)" and row["AckState"] == "false(2)", row
        assert row["Source"] == "device(2)" and row["Level"] == "abnormal(7)", row
        assert row["Device"] == "ats" and int(row["Severity"]) >= 700, row
        n = row["index"]
        out = snmp("snmpset", "-v2c", "-c", "public", demo.snmp, f"busbarAlarmAckState.{n}", "i", "1", check=False)
        assert "noAccess" in out.stderr or "authorizationError" in out.stderr, "public is read-only"
        out = snmp("snmpset", *V3, demo.snmp, f"busbarAlarmAckState.{n}", "i", "2", check=False)
        assert "wrongValue" in out.stderr, "an acknowledgement is not taken back"
        snmp("snmpset", *V3, demo.snmp, f"busbarAlarmAckState.{n}", "i", "1")
        history = demo.get(demo.http, f"/api/alarms/history?alarm={alarm}")
        assert history[0]["kind"] == "acknowledged", history
        assert history[0]["actor"]["user"] == "busbar" and history[0]["actor"]["via"] == "snmp", history[0]
        assert alarm_rows(demo)[alarm]["AckState"] == "true(1)"
        demo.post(demo.control, "/api/devices/ats/events", {"event": "mains_restored"})
        deadline = time.time() + 20
        while alarm in alarm_rows(demo) and time.time() < deadline:
            time.sleep(0.3)
        assert alarm not in alarm_rows(demo), "cleared and acknowledged: no longer listed"
        kinds = [t["kind"] for t in demo.get(demo.http, f"/api/alarms/history?alarm={alarm}")]
        assert kinds == ["cleared", "acknowledged", "raised"], kinds
    finally:
        demo.stop()
