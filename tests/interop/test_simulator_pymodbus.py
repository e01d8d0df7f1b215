"""busbar-sim read and written by pymodbus (a Modbus client nobody on this team wrote), at the
published addresses of the Socomec, SunSpec and ATyS maps."""

import struct
import time

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusIOException


def client(sim) -> ModbusTcpClient:
    c = ModbusTcpClient("127.0.0.1", port=sim.port, timeout=2, retries=0)
    assert c.connect()
    return c


def regs(c, unit, address, count):
    r = c.read_holding_registers(address, count=count, device_id=unit)
    assert not r.isError(), f"unit {unit} @{address}: {r}"
    return r.registers


def u32(words, i):
    return (words[i] << 16) | words[i + 1]


def s32(words, i):
    return struct.unpack(">i", struct.pack(">HH", words[i], words[i + 1]))[0]


def test_socomec_common_table_makes_physical_sense(sim):
    c = client(sim)
    assert bytes(b for w in regs(c, 2, 50000, 2) for b in w.to_bytes(2, "big")) == b"SOCO"
    w = regs(c, 2, 50512, 38)
    v = [u32(w, 8 + 2 * k) / 100 for k in range(3)]
    u12 = u32(w, 2) / 100
    f = u32(w, 14) / 100
    i = [u32(w, 16 + 2 * k) / 1000 for k in range(3)]
    p = s32(w, 24) * 10
    s = u32(w, 28) * 10
    pf = s32(w, 30) / 1000
    for x in v:
        assert 207 <= x <= 253, v
    assert abs(u12 - 3 ** 0.5 * (v[0] + v[1]) / 2) < 5, (u12, v)
    assert 49.5 <= f <= 50.5
    assert all(x > 0 for x in i)
    assert abs(s - sum(a * b for a, b in zip(v, i))) / s < 0.01
    assert 0.5 < pf <= 1.0 and abs(pf - p / s) < 0.01
    e0 = u32(regs(c, 2, 50780, 2), 0)
    assert e0 >= 184200, "initial energy counter from the scenario (kWh)"
    c.close()


def test_sunspec_model_chain(sim):
    c = client(sim)
    w = regs(c, 4, 40000, 4)
    assert w[:2] == [0x5375, 0x6E53]
    assert w[2:] == [1, 66], "Common model"
    model = regs(c, 4, 40070, 107)
    assert model[:2] == [203, 105]
    sf = lambda x: struct.unpack(">h", struct.pack(">H", x))[0]
    a_sf, v_sf, hz_sf, w_sf, pf_sf = sf(model[6]), sf(model[15]), sf(model[17]), sf(model[22]), sf(model[37])
    assert (a_sf, v_sf, hz_sf, w_sf, pf_sf) == (-2, -1, -2, 1, -2)
    volts = [sf(model[8 + k]) * 10 ** v_sf for k in range(3)]
    hz = sf(model[16]) * 10 ** hz_sf
    amps = [sf(model[3 + k]) * 10 ** a_sf for k in range(3)]
    watts = sf(model[18]) * 10 ** w_sf
    pf_pct = sf(model[33]) * 10 ** pf_sf
    assert all(207 <= x <= 253 for x in volts), volts
    assert 49.5 <= hz <= 50.5
    assert abs(watts - sum(v * i for v, i in zip(volts, amps)) * pf_pct / 100) / watts < 0.05
    end = regs(c, 4, 40177, 2)
    assert end == [0xFFFF, 0], "end of the model list"
    c.close()


def test_atys_command_transfers_to_position_0_and_back(sim):
    c = client(sim)
    block = regs(c, 1, 0x5000, 10)
    assert block[1] == 0x10, "auto mode"
    assert block[2] == 2, "position I"
    assert block[6] == 2, "source I available"
    r = c.write_register(20784, 2, device_id=1)  # transfer to position 0
    assert not r.isError(), r
    deadline = time.time() + 5
    while time.time() < deadline and regs(c, 1, 0x5002, 1)[0] != 1:
        time.sleep(0.1)
    assert regs(c, 1, 0x5000, 3)[1:] == [0x20, 1], "remote mode, position 0"
    # The meter downstream of the ATS loses its voltage.
    deadline = time.time() + 5
    while time.time() < deadline and u32(regs(c, 2, 50520, 2), 0) != 0:
        time.sleep(0.1)
    assert u32(regs(c, 2, 50520, 2), 0) == 0
    assert not c.write_register(20784, 4, device_id=1).isError()  # back to auto
    deadline = time.time() + 8
    while time.time() < deadline and regs(c, 1, 0x5002, 1)[0] != 2:
        time.sleep(0.2)
    assert regs(c, 1, 0x5000, 3)[1:] == [0x10, 2], "auto mode, back on source I"
    counters = regs(c, 1, 20744, 4)
    assert u32(counters, 0) >= 1, "switches to 0 counted"
    c.close()


def test_charger_current_limit_is_honoured(sim):
    sim.api("POST", "/api/devices/ev1/events", {"event": "vehicle_arrives", "energy_kwh": 30, "max_current_a": 32})
    c = client(sim)
    assert not c.write_register(4101, 10, device_id=10).isError()
    deadline = time.time() + 8
    amps = None
    while time.time() < deadline:
        f = regs(c, 10, 4104, 2)
        amps = struct.unpack(">f", struct.pack(">HH", *f))[0]
        if abs(amps - 10) < 0.01:
            break
        time.sleep(0.2)
    assert abs(amps - 10) < 0.01, amps
    assert regs(c, 10, 4100, 1)[0] == 100, "setpoint 10.0 A (0.1 A units)"
    assert abs(sim.truth("ev1", "i1") - 10) < 0.01
    # Above the rating: illegal data value, as the profile's range says.
    r = c.write_register(4101, 80, device_id=10)
    assert r.isError() and r.exception_code == 3
    c.close()


def test_silent_device_times_out_while_others_answer(sim):
    sim.api("POST", "/api/devices/ev2/faults", {"fault": "silent"})
    c = client(sim)
    with pytest.raises(ModbusIOException):
        c.read_holding_registers(4096, count=1, device_id=11)  # no answer: pymodbus times out
    c.close()
    c = client(sim)
    assert regs(c, 2, 50000, 2) == [0x534F, 0x434F]
    sim.api("DELETE", "/api/devices/ev2/faults")
    assert len(regs(c, 11, 4096, 1)) == 1
    r = c.read_holding_registers(50000, count=2, device_id=200)
    assert r.isError() and r.exception_code == 0x0B, "unknown unit behind the gateway"
    c.close()
