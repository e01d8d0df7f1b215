"""The bridge's northbound Modbus-TCP server, read and written by pymodbus and mbpoll using the
map `busbar export modbus-map` exports (the same one a SCADA engineer imports)."""

import re
import struct
import subprocess
import time

from pymodbus.client import ModbusTcpClient


def f32(words):
    return struct.unpack(">f", struct.pack(">HH", *words))[0]


def test_exported_map_describes_every_device(demo):
    units = {row["unit_id"] for row in demo.map.values()}
    assert len(units) == 17
    v1 = demo.map["main_meter/v1"]
    assert (v1["type"], v1["registers"], v1["unit"], v1["word_order"]) == ("float32", "2", "V", "ABCD")
    assert demo.map["ats/command"]["writable"] == "yes"
    assert demo.map["main_meter/ea_import"]["type"] == "uint32"


def test_pymodbus_reads_float_points_that_match_the_api(demo):
    api = demo.wait_good("main_meter/v1")
    row = demo.map["main_meter/v1"]
    c = ModbusTcpClient("127.0.0.1", port=demo.modbus, timeout=2, retries=0)
    assert c.connect()
    r = c.read_holding_registers(int(row["address"]), count=2, device_id=int(row["unit_id"]))
    assert not r.isError(), r
    v1 = f32(r.registers)
    assert 207 <= v1 <= 253
    assert abs(v1 - api["value"]) < 5, (v1, api["value"])
    # Status block: online, age of last good read small.
    st = c.read_holding_registers(0, count=8, device_id=int(row["unit_id"])).registers
    assert st[0] == 1 and (st[2] << 16 | st[3]) <= 5
    # Energy counter as uint32 in kWh (the profile's resolution).
    e = demo.map["main_meter/ea_import"]
    r = c.read_holding_registers(int(e["address"]), count=2, device_id=int(e["unit_id"]))
    assert (r.registers[0] << 16 | r.registers[1]) >= 184200
    c.close()


def test_pymodbus_write_reaches_the_simulated_ats(demo):
    demo.wait_good("ats/command")
    row = demo.map["ats/command"]
    c = ModbusTcpClient("127.0.0.1", port=demo.modbus, timeout=5, retries=0)
    assert c.connect()
    regs = list(struct.unpack(">HH", struct.pack(">f", 2.0)))  # transfer to position 0
    r = c.write_registers(int(row["address"]), regs, device_id=int(row["unit_id"]))
    assert not r.isError(), r
    deadline = time.time() + 5
    position = None
    while time.time() < deadline:
        position = demo.get(demo.control, "/api/devices/ats")["truth"]["position"]["value"]
        if position == 1:
            break
        time.sleep(0.2)
    assert position == 1, "the simulated switch is in position 0"
    # The bridge sees it on its next poll.
    deadline = time.time() + 5
    while time.time() < deadline and demo.get(demo.http, "/api/points/ats/position")["value"] != 1:
        time.sleep(0.2)
    assert demo.get(demo.http, "/api/points/ats/position")["label"] == "position_0"
    # Writing a read-only point: illegal data address.
    ro = demo.map["main_meter/v1"]
    r = c.write_registers(int(ro["address"]), regs, device_id=int(ro["unit_id"]))
    assert r.isError() and r.exception_code == 2
    c.close()


def test_offline_device_answers_0b_and_recovers(demo):
    demo.wait_good("ev2/state")
    demo.post(demo.control, "/api/devices/ev2/faults", {"fault": "silent"})
    row = demo.map["ev2/state"]
    c = ModbusTcpClient("127.0.0.1", port=demo.modbus, timeout=2, retries=0)
    assert c.connect()
    deadline = time.time() + 6
    code = None
    while time.time() < deadline:
        r = c.read_holding_registers(int(row["address"]), count=2, device_id=int(row["unit_id"]))
        code = getattr(r, "exception_code", None) if r.isError() else None
        if code == 0x0B:
            break
        time.sleep(0.2)
    assert code == 0x0B, "gateway target failed to respond"
    req = __import__("urllib.request").request.Request(demo.control + "/api/devices/ev2/faults", method="DELETE")
    __import__("urllib.request").request.urlopen(req, timeout=5)
    demo.wait_good("ev2/state", timeout=15)
    r = c.read_holding_registers(int(row["address"]), count=2, device_id=int(row["unit_id"]))
    assert not r.isError()
    c.close()


def test_mbpoll_reads_floats_from_the_bridge(demo):
    demo.wait_good("main_meter/frequency")
    row = demo.map["main_meter/frequency"]
    out = subprocess.run(["mbpoll", "-m", "tcp", "-p", str(demo.modbus), "-0", "-1", "-a", row["unit_id"],
                          "-t", "4:float", "-B", "-r", row["address"], "-c", "1", "127.0.0.1"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stdout + out.stderr
    values = re.findall(r"^\[\d+\]:\s+(-?[0-9.]+)", out.stdout, re.M)
    assert values and 49.5 <= float(values[0]) <= 50.5, out.stdout
