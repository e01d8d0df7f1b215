"""The BACnet device against a second, independent stack: @bacnet-js/client (TypeScript, from
the npm registry), driven through tests/interop/bacnet_js/peer.js. It discovers the device,
reads the Object_List whole in segments at a small APDU size, reads many properties at once,
receives the EventNotification of a breaker trip (registered in a Recipient_List by bacpypes3,
whose tests are in test_bacnet_events.py), lists it with GetEventInformation, and exercises
device management: DeviceCommunicationControl and ReinitializeDevice with and without the
password, and a UTC time synchronization counted but never applied."""

import asyncio
import json
import queue
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier

from test_alarms_journal import Bridge, free_port, sim  # noqa: F401  (sim is a fixture)
from test_bacnet_events import DEVICE, Bms, free_udp_port

HERE = Path(__file__).resolve().parent / "bacnet_js"
PASSWORD = "s3cret-dcc"

# BACnet numbers the peer speaks in (bacnet-js passes them through).
OBJECT_LIST, OBJECT_NAME, PRESENT_VALUE, STATUS_FLAGS, EVENT_STATE = 76, 77, 85, 111, 36
LAST_RESTART_REASON, TIME_OF_DEVICE_RESTART = 196, 203
DEVICE_TYPE, NOTIFICATION_CLASS_TYPE = 8, 15
OCTETS_128 = 1
DISABLE, ENABLE, DISABLE_INITIATION = 1, 0, 2
WARMSTART, START_BACKUP = 1, 2
# How bacnet-js reports an Error PDU: class and code.
PASSWORD_FAILURE = "BacnetError - Class:4 - Code:26"
SERVICE_REQUEST_DENIED = "BacnetError - Class:5 - Code:29"
OPTIONAL_FUNCTIONALITY_NOT_SUPPORTED = "BacnetError - Class:5 - Code:45"


def write_config(tmp_path, sim, bacnet_port, password=True):
    config = tmp_path / "bridge.yaml"
    pw = f", password: {PASSWORD}" if password else ""
    config.write_text(f"""site: {{ name: Second stack, id: js }}
connections: [{{ name: gw, tcp: {{ host: 127.0.0.1, port: {sim.port} }} }}]
devices:
  - {{ name: ats, profile: socomec-atys-pm, connection: gw, unit_id: 1, poll_interval_ms: 200 }}
  - {{ name: main_meter, profile: socomec-diris-a40, connection: gw, unit_id: 2, poll_interval_ms: 200 }}
  - {{ name: shop_breaker, profile: legrand-dpx3, connection: gw, unit_id: 14, poll_interval_ms: 200 }}
servers:
  http: {{ listen: "127.0.0.1:{free_port()}" }}
  bacnet: {{ listen: "127.0.0.1:{bacnet_port}", device_instance: {DEVICE}{pw} }}
alarms:
  journal: {tmp_path / "alarms.db"}
""")
    return config


class Peer:
    """peer.js as a subprocess: commands in, answers and unasked messages out."""

    def __init__(self):
        node = shutil.which("node")
        if node is None or not (HERE / "node_modules" / "@bacnet-js" / "client").is_dir():
            pytest.fail("node and `npm ci` in tests/interop/bacnet_js are needed (scripts/test runs it)")
        self.port = free_udp_port()
        self.proc = subprocess.Popen([node, str(HERE / "peer.js"), str(self.port)], cwd=HERE, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.answers = queue.Queue()
        self.events = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.next_event("ready", timeout=10)
        self.ids = iter(range(1, 1 << 30))

    def _pump(self):
        for line in self.proc.stdout:
            m = json.loads(line)
            (self.events if "event" in m else self.answers).put(m)

    def call(self, op, timeout=20, **args):
        i = next(self.ids)
        self.proc.stdin.write(json.dumps({"id": i, "op": op, **args}) + "\n")
        self.proc.stdin.flush()
        deadline = time.time() + timeout
        while True:
            m = self.answers.get(timeout=max(0.1, deadline - time.time()))
            if m.get("id") == i:
                return m

    def ok(self, op, **args):
        m = self.call(op, **args)
        assert m["ok"], f"{op}: {m.get('error')}"
        return m["result"]

    def next_event(self, kind, timeout=15, where=lambda m: True):
        deadline = time.time() + timeout
        while True:
            m = self.events.get(timeout=max(0.1, deadline - time.time()))
            if m["event"] == kind and where(m):
                return m

    def quiet(self, kind, seconds):
        """No `kind` message for `seconds`."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                m = self.events.get(timeout=max(0.05, deadline - time.time()))
            except queue.Empty:
                return
            assert m["event"] != kind, f"unexpected {kind}: {m}"

    def stop(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def metric(bridge, name):
    with urllib.request.urlopen(bridge.http + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def register(bacnet_port, peer_port, classes):
    """bacpypes3 writes the bacnet-js peer's address into Recipient_Lists."""

    async def go():
        bms = Bms()
        bms.port = peer_port  # the destination names the peer, not the writer
        await asyncio.sleep(0.5)
        try:
            for c in classes:
                await bms.app.write_property(Address(f"127.0.0.1:{bacnet_port}"),
                                             ObjectIdentifier(f"notification-class,{c}"), "recipientList",
                                             [bms.destination(confirmed=True, process=21)])
        finally:
            bms.app.close()

    asyncio.run(go())


def object_ids(values):
    return [(v["value"]["type"], v["value"]["instance"]) for v in values]


def test_a_second_stack_discovers_reads_in_segments_and_receives_the_trip(sim, tmp_path):
    port = free_udp_port()
    bridge = Bridge(write_config(tmp_path, sim, port))
    peer = Peer()
    to = f"127.0.0.1:{port}"
    try:
        peer.ok("whoIs", to=to, low=DEVICE, high=DEVICE)
        i_am = peer.next_event("iAm")
        assert i_am["payload"]["deviceId"] == DEVICE

        count = peer.ok("read", to=to, type=DEVICE_TYPE, instance=DEVICE, property=OBJECT_LIST, index=0)
        n = count[0]["value"]
        assert n > 80, "three devices' points, the device and five Notification Classes"
        before = metric(bridge, "busbar_bacnet_segmented_answers_total")
        whole = peer.call("read", to=to, type=DEVICE_TYPE, instance=DEVICE, property=OBJECT_LIST,
                          maxApdu=OCTETS_128)
        # A 128-octet APDU takes about 24 identifiers: the list needs many segments.
        assert whole["ok"], whole
        ids = object_ids(whole["result"])
        assert len(ids) == n and len(set(ids)) == n and ids[0] == (DEVICE_TYPE, DEVICE)
        assert sum(1 for t, _ in ids if t == NOTIFICATION_CLASS_TYPE) == 5
        assert metric(bridge, "busbar_bacnet_segmented_answers_total") >= before + 1

        # Many properties of many objects at once.
        specs = [{"objectId": {"type": t, "instance": i},
                  "properties": [{"id": OBJECT_NAME}, {"id": PRESENT_VALUE}, {"id": STATUS_FLAGS}]}
                 for t, i in ids[1:40] if t != NOTIFICATION_CLASS_TYPE]
        got = peer.ok("readMultiple", to=to, specs=specs)
        assert len(got) == len(specs)
        names = {}
        for obj in got:
            by_id = {p["id"]: p["value"] for p in obj["values"]}
            assert set(by_id) == {OBJECT_NAME, PRESENT_VALUE, STATUS_FLAGS}
            names[by_id[OBJECT_NAME][0]["value"]] = (obj["objectId"]["type"], obj["objectId"]["instance"])
        breaker = None
        for t, i in ids:
            name = peer.ok("read", to=to, type=t, instance=i, property=OBJECT_NAME)[0]["value"]
            if name == "shop_breaker.state":
                breaker = (t, i)
                break
        assert breaker is not None

        register(port, peer.port, [4])
        sim.api("POST", "/api/devices/shop_breaker/events", {"event": "breaker_trip", "cause": "overload"})
        note = peer.next_event("eventNotify", where=lambda m: m["payload"]["eventObjectId"]["instance"] == breaker[1])
        p = note["payload"]
        assert note["confirmed"], "the Recipient_List asked for confirmed notifications"
        assert p["initiatingObjectId"] == {"type": DEVICE_TYPE, "instance": DEVICE}
        assert (p["fromState"], p["toState"], p["notifyType"]) == (0, 2, 0), "normal -> offnormal, alarm"
        assert p["eventType"] == 1 and p["processId"] == 21, "change-of-state, the registered process"
        assert p["notificationClass"] == 4 and p["priority"] == 70 and p["ackRequired"]
        assert "tripped" in p["messageText"]

        events = peer.ok("eventInformation", to=to)
        listed = [e for e in events if e["objectId"]["instance"] == breaker[1]]
        assert listed and listed[0]["eventState"] == 2, events
        state = peer.ok("read", to=to, type=breaker[0], instance=breaker[1], property=EVENT_STATE)
        assert state[0]["value"] == 2
    finally:
        peer.stop()
        bridge.stop()


def test_device_management_needs_the_password_and_silences_then_restarts(sim, tmp_path):
    port = free_udp_port()
    bridge = Bridge(write_config(tmp_path, sim, port))
    peer = Peer()
    to = f"127.0.0.1:{port}"
    dev = {"type": DEVICE_TYPE, "instance": DEVICE}
    try:
        for password in [None, "guess"]:
            args = {} if password is None else {"password": password}
            refused = peer.call("communicationControl", to=to, minutes=1, state=DISABLE, **args)
            assert not refused["ok"] and refused["error"] == PASSWORD_FAILURE, refused
        assert peer.ok("read", to=to, property=OBJECT_NAME, **dev)[0]["value"] == "Second stack"

        # Disabled: silent to reads and Who-Is; only DeviceCommunicationControl ends it.
        peer.ok("communicationControl", to=to, minutes=5, state=DISABLE, password=PASSWORD)
        silent = peer.call("read", to=to, property=OBJECT_NAME, timeout=30, **dev)
        assert not silent["ok"] and "TIMEOUT" in silent["error"].upper(), silent
        peer.ok("whoIs", to=to, low=DEVICE, high=DEVICE)
        peer.quiet("iAm", 1.5)
        peer.ok("communicationControl", to=to, state=ENABLE, password=PASSWORD)
        assert peer.ok("read", to=to, property=OBJECT_NAME, **dev)[0]["value"] == "Second stack"
        assert metric(bridge, "busbar_bacnet_communication_controls_total") == 2

        # Initiation disabled: answers, but the mains loss is not notified; enabled again, the
        # return of mains is.
        register(port, peer.port, [4])
        peer.ok("communicationControl", to=to, state=DISABLE_INITIATION, password=PASSWORD)
        sim.api("POST", "/api/devices/ats/events", {"event": "mains_lost"})
        bridge.wait_alarm("device/ats/source1_state", lambda a: a["state"]["active"])
        assert peer.ok("read", to=to, property=OBJECT_NAME, **dev)[0]["value"] == "Second stack"
        peer.quiet("eventNotify", 2.0)
        peer.ok("communicationControl", to=to, state=ENABLE, password=PASSWORD)
        sim.api("POST", "/api/devices/ats/events", {"event": "mains_restored"})
        back = peer.next_event("eventNotify", timeout=30, where=lambda m: m["payload"]["toState"] == 0)
        assert back["payload"]["fromState"] == 2

        # ReinitializeDevice: the password again; backup is not the device's business.
        assert peer.call("reinitialize", to=to, state=WARMSTART)["error"] == PASSWORD_FAILURE
        backup = peer.call("reinitialize", to=to, state=START_BACKUP, password=PASSWORD)
        assert backup["error"] == OPTIONAL_FUNCTIONALITY_NOT_SUPPORTED, backup
        assert peer.ok("read", to=to, property=LAST_RESTART_REASON, **dev)[0]["value"] == 1, "coldstart"
        peer.ok("reinitialize", to=to, state=WARMSTART, password=PASSWORD)
        assert peer.ok("read", to=to, property=LAST_RESTART_REASON, **dev)[0]["value"] == 2, "warmstart"
        assert metric(bridge, "busbar_bacnet_reinitializations_total") == 1

        # A time synchronization is taken in and counted, never applied.
        peer.ok("timeSync", to=to, utc=True, iso="2031-01-01T00:00:00Z")
        deadline = time.time() + 5
        while metric(bridge, "busbar_bacnet_time_synchronizations_total") < 1 and time.time() < deadline:
            time.sleep(0.1)
        assert metric(bridge, "busbar_bacnet_time_synchronizations_total") == 1
        assert time.time() < 1893456000, "the host clock is not moved to 2031"
    finally:
        peer.stop()
        bridge.stop()


def test_without_a_password_device_management_is_refused(sim, tmp_path):
    port = free_udp_port()
    bridge = Bridge(write_config(tmp_path, sim, port, password=False))
    peer = Peer()
    to = f"127.0.0.1:{port}"
    try:
        for op, args in [("communicationControl", {"state": DISABLE}), ("reinitialize", {"state": WARMSTART})]:
            m = peer.call(op, to=to, password="anything", **args)
            assert m["error"] == SERVICE_REQUEST_DENIED, m
        assert peer.ok("read", to=to, type=DEVICE_TYPE, instance=DEVICE, property=OBJECT_NAME)[0]["value"] \
            == "Second stack", "still answering"
        assert metric(bridge, "busbar_bacnet_communication_controls_total") == 0
    finally:
        peer.stop()
        bridge.stop()
