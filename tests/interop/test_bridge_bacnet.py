"""The bridge's BACnet/IP device against bacpypes3 (a BACnet stack nobody here wrote): discovery
(unicast, and broadcast through foreign-device registration), Object_List, ReadPropertyMultiple
with units and status flags, commands reaching the simulated devices (and failing honestly),
COV subscriptions, FAULT + COMMUNICATION_FAILURE when a device goes silent, and raw malformed
datagrams that must never stop the server."""

import asyncio
import csv
import itertools
import socket
import struct
import subprocess
import time
import urllib.request

import pytest
from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.app import Application
from bacpypes3.argparse import SimpleArgumentParser
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier

from conftest import ROOT, Demo, find_binary, stop_process

# Each client stack gets its own UDP port (two stacks on one port and address collide).
_ports = itertools.count(47900)


def run(coro):
    return asyncio.run(coro)


def client(*extra):
    port = next(_ports)
    args = SimpleArgumentParser().parse_args(["--address", f"127.0.0.1/8:{port}", "--instance", str(port), *extra])
    return Application.from_args(args)


def objects(tmp_path):
    """Object name -> 'type,instance' from `busbar export ede` (what an integrator imports)."""
    subprocess.run([find_binary("busbar"), "export", "ede", "--out", str(tmp_path)], cwd=ROOT, check=True,
                   capture_output=True)
    rows = (tmp_path / "station-nord_EDE.csv").read_text().splitlines()
    out = {}
    for row in csv.reader((r for r in rows if r and not r.startswith("#") and ";" in r and r.count(";") > 10),
                          delimiter=";"):
        out[row[2]] = f"{int(row[3])},{int(row[4])}"
    return out


@pytest.fixture
def ede(tmp_path):
    return objects(tmp_path)


async def started(app):
    # bacpypes3 binds in the background.
    await asyncio.sleep(1.0)
    return app


def test_unicast_who_is_finds_the_device_and_ranges_filter(demo):
    async def go():
        app = await started(client())
        try:
            srv = Address(f"127.0.0.1:{demo.bacnet}")
            i_ams = await app.who_is(100, 100, address=srv, timeout=3)
            assert len(i_ams) == 1
            assert i_ams[0].iAmDeviceIdentifier == ObjectIdentifier("device,100")
            assert i_ams[0].maxAPDULengthAccepted == 1476
            assert str(i_ams[0].segmentationSupported) == "segmented-both"
            assert await app.who_is(5, 99, address=srv, timeout=2) == []
            # The wildcard instance means "this device".
            name = await app.read_property(srv, ObjectIdentifier("device,4194303"), "objectName")
            assert str(name) == "Station Nord bridge"
        finally:
            app.close()

    run(go())


def test_object_list_by_index_and_rpm_of_a_meter(demo, ede):
    demo.wait_good("main_meter/v1")

    async def go():
        app = await started(client())
        try:
            srv = Address(f"127.0.0.1:{demo.bacnet}")
            dev = ObjectIdentifier("device,100")
            count = await app.read_property(srv, dev, "objectList", 0)
            assert count == len(ede) , "Object_List length = objects in the EDE export (device included)"
            assert await app.read_property(srv, dev, "objectList", 1) == dev
            last = await app.read_property(srv, dev, "objectList", count)
            assert f"{int(last[0])},{last[1]}" in ede.values()
            v1, p = ede["main_meter.v1"], ede["main_meter.p"]
            result = await app.read_property_multiple(
                srv, [v1, ["presentValue", "units", "statusFlags", "reliability", "objectName"],
                      p, ["presentValue", "units"]])
            got = {(str(o), str(prop)): v for o, prop, _, v in result}
            volts = got[(f"analog-input,{v1.split(',')[1]}", "present-value")]
            api = demo.get(demo.http, "/api/points/main_meter/v1")["value"]
            assert abs(volts - api) < 15, (volts, api)
            assert 180 < volts < 260
            assert str(got[(f"analog-input,{v1.split(',')[1]}", "units")]) == "volts"
            assert str(got[(f"analog-input,{p.split(',')[1]}", "units")]) == "watts"
            flags = got[(f"analog-input,{v1.split(',')[1]}", "status-flags")]
            assert list(flags) == [0, 0, 0, 0], "in alarm, fault, overridden, out of service all clear"
            assert str(got[(f"analog-input,{v1.split(',')[1]}", "reliability")]) == "no-fault-detected"
            # ALL on an object, and an unknown object answered inside the RPM.
            everything = await app.read_property_multiple(srv, [v1, ["all"]])
            props = {str(prop) for _, prop, _, _ in everything}
            assert {"present-value", "units", "status-flags", "cov-increment", "description"} <= props
            missing = await app.read_property_multiple(srv, ["analog-input,4000000", ["presentValue"]])
            assert isinstance(missing[0][3], object) and "unknown-object" in str(missing[0][3].errorCode)
        finally:
            app.close()

    run(go())


def metric(base, name):
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def test_whole_object_list_and_long_rpms_travel_in_segments(demo, ede):
    """What a BMS front-end does first: the whole Object_List in one read, then every object's
    name and value in one ReadPropertyMultiple, far over one APDU both ways."""
    demo.wait_good("main_meter/v1")

    async def go():
        app = await started(client())
        # A front-end configured for a large site: 64 segments of 1476 octets per answer.
        app.device_object.maxSegmentsAccepted = 64
        app.device_object.maxApduLengthAccepted = 1476
        try:
            srv = Address(f"127.0.0.1:{demo.bacnet}")
            dev = ObjectIdentifier("device,100")
            # Learn the device (bacpypes3 segments a request only toward a device it knows segments).
            assert len(await app.who_is(100, 100, address=srv, timeout=3)) == 1
            assert await app.read_property(srv, dev, "maxSegmentsAccepted") == 256
            assert str(await app.read_property(srv, dev, "segmentationSupported")) == "segmented-both"
            whole = await app.read_property(srv, dev, "objectList")
            assert len(whole) == len(ede) > 300, "every object, device included"
            listed = [f"{int(o[0])},{o[1]}" for o in whole]
            assert len(set(listed)) == len(listed), "each object once"
            assert set(listed) == set(ede.values())
            assert whole[0] == dev
            answers_before = metric(demo.http, "busbar_bacnet_segmented_answers_total")
            requests_before = metric(demo.http, "busbar_bacnet_segmented_requests_total")
            specs = []
            for oid in ede.values():
                if not oid.startswith("8,"):
                    specs += [oid, ["objectName", "presentValue"]]
            result = await app.read_property_multiple(srv, specs)
            names = {str(v) for o, p, _, v in result if str(p) == "object-name"}
            assert names == {n for n, oid in ede.items() if not oid.startswith("8,")}
            v1 = ede["main_meter.v1"].split(",")[1]
            volts = [v for o, p, _, v in result if str(o) == f"analog-input,{v1}" and str(p) == "present-value"]
            assert len(volts) == 1 and 180 < volts[0] < 260
            assert metric(demo.http, "busbar_bacnet_segmented_requests_total") > requests_before, \
                "the request went in segments"
            assert metric(demo.http, "busbar_bacnet_segmented_answers_total") > answers_before
            assert metric(demo.http, "busbar_bacnet_segmented_failures_total") == 0
        finally:
            app.close()

    run(go())


def test_object_list_of_a_thousand_device_site(tmp_path):
    """A site of 1000 meters (never reachable: this is about the object model, not the values)
    as one BACnet device: its Object_List read whole by bacpypes3, in segments."""
    port = next(_ports)
    http = next(_ports)
    devices = "".join(
        f"  - {{ name: m{i:04}, profile: socomec-diris-a40, connection: gw{i // 200}, unit_id: {i % 200 + 1}, "
        f"bacnet_base: {i + 1} }}\n" for i in range(1000))
    connections = ", ".join(f"{{ name: gw{c}, tcp: {{ host: 127.0.0.1, port: {9 + c} }} }}" for c in range(5))
    config = tmp_path / "site.yaml"
    config.write_text(f"site: {{ name: Campus, id: campus }}\nconnections: [{connections}]\ndevices:\n{devices}"
                      f"servers:\n  bacnet: {{ listen: '127.0.0.1:{port}', device_instance: 7 }}\n"
                      f"  http: {{ listen: '127.0.0.1:{http}' }}\n")
    proc = subprocess.Popen([find_binary("busbar"), "run", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async def go():
            app = await started(client())
            # Take as many segments as the server will send (bacpypes3 says "more than 64").
            app.device_object.maxSegmentsAccepted = 1000
            app.device_object.maxApduLengthAccepted = 1476
            try:
                srv = Address(f"127.0.0.1:{port}")
                dev = ObjectIdentifier("device,7")
                for _ in range(50):
                    if await app.who_is(7, 7, address=srv, timeout=1):
                        break
                count = await app.read_property(srv, dev, "objectList", 0)
                assert count > 20_000
                started_at = time.monotonic()
                whole = await app.read_property(srv, dev, "objectList")
                took = time.monotonic() - started_at
                assert len(whole) == count
                assert len({(int(o[0]), o[1]) for o in whole}) == count, "no object twice"
                print(f"{count} objects in {took:.2f} s")
            finally:
                app.close()

        run(go())
        assert metric(f"http://127.0.0.1:{http}", "busbar_bacnet_segmented_answers_total") == 1
    finally:
        stop_process(proc)


def test_commands_reach_the_simulated_devices_or_fail_honestly(demo, ede):
    demo.wait_good("ev1/current_limit")
    demo.wait_good("shop_breaker/state")

    async def go():
        app = await started(client())
        try:
            srv = Address(f"127.0.0.1:{demo.bacnet}")
            limit = ObjectIdentifier(ede["ev1.current_limit"])
            assert int(limit[0]) == 2, "a writable analog point is a commandable analog value"
            await app.write_property(srv, limit, "presentValue", 14.0, priority=8)
            truth = demo.get(demo.control, "/api/devices/ev1")["truth"]["current_limit"]["value"]
            assert truth == 14.0
            pa = await app.read_property(srv, limit, "priorityArray")
            assert pa[7].real == 14.0, "priority 8 holds the command"
            # A value outside the point's range is refused before reaching the device.
            with pytest.raises(ErrorRejectAbortNack) as e:
                await app.write_property(srv, limit, "presentValue", 99.0, priority=8)
            assert "value-out-of-range" in str(e.value)
            # A multi-state command: the breaker opens.
            cmd = ObjectIdentifier(ede["shop_breaker.command"])
            texts = await app.read_property(srv, cmd, "stateText")
            await app.write_property(srv, cmd, "presentValue", list(texts).index("open") + 1)
            deadline = time.time() + 5
            while time.time() < deadline and demo.get(demo.control, "/api/devices/shop_breaker")["truth"]["state"]["value"] != 0:
                await asyncio.sleep(0.2)
            assert demo.get(demo.control, "/api/devices/shop_breaker")["truth"]["state"]["value"] == 0
            # Read-only points are not writable.
            with pytest.raises(ErrorRejectAbortNack) as e:
                await app.write_property(srv, ObjectIdentifier(ede["main_meter.v1"]), "presentValue", 1.0)
            assert "write-access-denied" in str(e.value)
            # A silent device: the write times out and says so.
            demo.post(demo.control, "/api/devices/ev2/faults", {"fault": "silent"})
            try:
                with pytest.raises(ErrorRejectAbortNack) as e:
                    await app.write_property(srv, ObjectIdentifier(ede["ev2.current_limit"]), "presentValue", 12.0)
                assert "timeout" in str(e.value) or "operational-problem" in str(e.value), str(e.value)
            finally:
                req = urllib.request.Request(demo.control + "/api/devices/ev2/faults", method="DELETE")
                urllib.request.urlopen(req, timeout=5)
        finally:
            app.close()

    run(go())


def test_cov_notifications_follow_the_store(demo, ede):
    demo.wait_good("main_meter/p")

    async def go():
        app = await started(client())
        try:
            srv = Address(f"127.0.0.1:{demo.bacnet}")
            power = ObjectIdentifier(ede["main_meter.p"])
            default = await app.read_property(srv, power, "covIncrement")
            assert default == pytest.approx(8000.0), "0.1 % of the profile's 8 MW range"
            # A BMS tunes the increment to the site: 10 W.
            await app.write_property(srv, power, "covIncrement", 10.0)
            assert await app.read_property(srv, power, "covIncrement") == 10.0
            seen = []
            async with app.change_of_value(srv, power, 17, True, 60) as scm:
                deadline = time.time() + 15
                while time.time() < deadline and len([v for p, v in seen if str(p) == "present-value"]) < 3:
                    try:
                        seen.append(await asyncio.wait_for(scm.get_value(), timeout=deadline - time.time()))
                    except asyncio.TimeoutError:
                        break
            values = [v for p, v in seen if str(p) == "present-value"]
            assert len(values) >= 3, f"initial notification and changes: {seen}"
            with urllib.request.urlopen(demo.http + "/metrics", timeout=5) as r:
                metrics = r.read().decode()
            sent = [l for l in metrics.splitlines() if l.startswith("busbar_bacnet_notifications_total ")]
            assert sent and int(sent[0].split()[1]) >= 3, sent
            assert len(set(values)) >= 2, "values change"
            assert any(str(p) == "status-flags" for p, _ in seen)
        finally:
            app.close()

    run(go())


def test_silenced_device_shows_fault_and_communication_failure(demo, ede):
    demo.wait_good("ev2/state")

    async def go():
        app = await started(client())
        try:
            srv = Address(f"127.0.0.1:{demo.bacnet}")
            state = ObjectIdentifier(ede["ev2.state"])
            before = await app.read_property(srv, state, "presentValue")
            notes = []
            async with app.change_of_value(srv, state, 18, False, 60) as scm:
                notes.append(await asyncio.wait_for(scm.get_value(), 5))
                demo.post(demo.control, "/api/devices/ev2/faults", {"fault": "silent"})
                deadline = time.time() + 10
                while time.time() < deadline:
                    try:
                        notes.append(await asyncio.wait_for(scm.get_value(), deadline - time.time()))
                    except asyncio.TimeoutError:
                        break
                    if any(str(p) == "status-flags" and v[1] == 1 for p, v in notes):
                        break
            assert any(str(p) == "status-flags" and v[1] == 1 for p, v in notes), f"a COV notification with FAULT: {notes}"
            flags = await app.read_property(srv, state, "statusFlags")
            assert flags[1] == 1, "fault"
            assert str(await app.read_property(srv, state, "reliability")) == "communication-failure"
            assert await app.read_property(srv, state, "presentValue") == before, "the last value stays"
            req = urllib.request.Request(demo.control + "/api/devices/ev2/faults", method="DELETE")
            urllib.request.urlopen(req, timeout=5)
            deadline = time.time() + 15
            while time.time() < deadline and (await app.read_property(srv, state, "statusFlags"))[1] == 1:
                await asyncio.sleep(0.3)
            assert (await app.read_property(srv, state, "statusFlags"))[1] == 0
            assert str(await app.read_property(srv, state, "reliability")) == "no-fault-detected"
        finally:
            app.close()

    run(go())


def test_who_has_by_name_and_id(demo, ede):
    async def go():
        app = await started(client())
        try:
            srv = Address(f"127.0.0.1:{demo.bacnet}")
            got = await app.who_has(object_name="tanks.tank1.volume", address=srv, timeout=3)
            assert len(got) == 1 and got[0].objectIdentifier == ObjectIdentifier(ede["tanks.tank1.volume"])
            got = await app.who_has(object_identifier=ObjectIdentifier(ede["imd.rf"]), address=srv, timeout=3)
            assert len(got) == 1 and str(got[0].objectName) == "imd.rf"
            # Notification Class objects too.
            got = await app.who_has(object_name="alarms.major", address=srv, timeout=3)
            assert len(got) == 1 and got[0].objectIdentifier == ObjectIdentifier(ede["alarms.major"])
            assert await app.who_has(object_name="no.such.point", address=srv, timeout=2) == []
        finally:
            app.close()

    run(go())


def _bvll(function, payload):
    return struct.pack("!BBH", 0x81, function, len(payload) + 4) + payload


def test_broadcast_who_is_reaches_a_foreign_device(tmp_path):
    """A BMS on another subnet registers as a foreign device and discovers the bridge with a
    broadcast Who-Is (bacpypes3 sends it as Distribute-Broadcast-To-Network); a plain local
    broadcast Who-Is is answered too (seen here by a raw registered foreign device)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        port = s.getsockname()[1]
    demo = Demo(bacnet=f"0.0.0.0:{port}")
    try:
        async def go():
            app = await started(client("--foreign", f"127.0.0.1:{port}", "--ttl", "30"))
            try:
                await asyncio.sleep(1.0)
                i_ams = await app.who_is(100, 100, timeout=3)
                assert [str(i.iAmDeviceIdentifier) for i in i_ams] == ["device,100"]
            finally:
                app.close()

        run(go())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            raw.bind(("127.0.0.1", 0))
            raw.settimeout(3)
            raw.sendto(_bvll(0x05, struct.pack("!H", 30)), ("127.0.0.1", port))  # Register-Foreign-Device
            assert raw.recv(64) == _bvll(0x00, b"\x00\x00"), "registration accepted"
            # Original-Broadcast Who-Is on the local broadcast address.
            raw.sendto(_bvll(0x0B, b"\x01\x00\x10\x08"), ("127.255.255.255", port))
            deadline = time.time() + 3
            got = b""
            while time.time() < deadline:
                got = raw.recv(1500)
                if got[1] == 0x04 and got[10:14] == b"\x01\x00\x10\x00":
                    break
            assert got[1] == 0x04, "a Forwarded-NPDU"
            assert got[4:10] == bytes([127, 0, 0, 1]) + struct.pack("!H", port), "from the address we reach it at"
            assert got[10:14] == b"\x01\x00\x10\x00", "carrying an I-Am"
            assert got[14:19] == b"\xc4\x02\x00\x00\x64", "of device 100"
    finally:
        demo.stop()


def test_malformed_datagrams_are_rejected_and_never_stop_it(demo):
    srv = ("127.0.0.1", demo.bacnet)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.settimeout(2)
        # Garbage at every layer: no answer, no crash.
        for junk in [b"", b"\x81", b"\x81\x0a\x00\x04", b"\x81\x0a\x00\x05\x01", b"\x82\x0a\x00\x04",
                     _bvll(0x0A, b"\x01\x20\x00"), _bvll(0x0A, b"\x01\x00\x00"), bytes(range(256)) * 4]:
            raw.sendto(junk, srv)
        # A ReadProperty whose object identifier is cut short: Reject (missing parameter).
        raw.sendto(_bvll(0x0A, b"\x01\x04" + b"\x00\x05\x2a\x0c" + b"\x0c\x02\x00"), srv)
        reply = raw.recv(1500)
        assert reply[6] >> 4 == 6 and reply[7] == 0x2A, "a Reject for invoke id 42"
        # An unknown confirmed service: Reject, unrecognized-service (9).
        raw.sendto(_bvll(0x0A, b"\x01\x04" + b"\x00\x05\x2b\x63"), srv)
        reply = raw.recv(1500)
        assert reply[6:9] == b"\x60\x2b\x09"
        # A later segment of a request never begun: Abort, invalid-apdu-in-this-state (2).
        raw.sendto(_bvll(0x0A, b"\x01\x04" + b"\x0c\x05\x2c\x03\x01\x0c\x0c\x02\x00\x00\x64\x19\x4d"), srv)
        reply = raw.recv(1500)
        assert reply[6:9] == b"\x71\x2c\x02"
        # Still answering.
        raw.sendto(_bvll(0x0A, b"\x01\x00\x10\x08"), srv)
        assert raw.recv(1500)[6:8] == b"\x10\x00", "I-Am"
