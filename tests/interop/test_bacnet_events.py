"""Alarms as BACnet events, against bacpypes3 (a stack nobody here wrote) as the BMS: it writes
itself into a Notification Class's Recipient_List, a simulated breaker trips, the confirmed
EventNotification arrives, GetEventInformation lists the object, AcknowledgeAlarm reaches the
engine and its journal (read back with Python's sqlite3), with the acknowledging source named.
An acknowledgement over HTTP, a mains sag past a threshold rule (out-of-range with its limit)
and a device going silent (a fault event) all reach a second recipient given by device
instance, and the Recipient_List outlives a restart of the bridge."""

import asyncio
import itertools
import socket
import sqlite3
import time

import pytest
from bacpypes3.apdu import AcknowledgeAlarmRequest, ErrorRejectAbortNack, GetEventInformationRequest, SimpleAckPDU
from bacpypes3.app import Application
from bacpypes3.argparse import SimpleArgumentParser
from bacpypes3.basetypes import (DaysOfWeek, Destination, DeviceAddress, EventTransitionBits, Recipient, TimeStamp)
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import CharacterString, ObjectIdentifier, OctetString, Time

from test_alarms_journal import TOKEN, Bridge, free_port, sim  # noqa: F401  (sim is a fixture)

_ports = itertools.count(47960)
DEVICE = 4711


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp_path, sim, bacnet_port):
    config = tmp_path / "bridge.yaml"
    config.write_text(f"""site: {{ name: Events, id: events }}
connections: [{{ name: gw, tcp: {{ host: 127.0.0.1, port: {sim.port} }} }}]
devices:
  - {{ name: ats, profile: socomec-atys-pm, connection: gw, unit_id: 1, poll_interval_ms: 200 }}
  - {{ name: main_meter, profile: socomec-diris-a40, connection: gw, unit_id: 2, poll_interval_ms: 200 }}
  - {{ name: shop_breaker, profile: legrand-dpx3, connection: gw, unit_id: 14, poll_interval_ms: 200 }}
servers:
  http: {{ listen: "127.0.0.1:{free_port()}", token: {TOKEN} }}
  bacnet: {{ listen: "127.0.0.1:{bacnet_port}", device_instance: {DEVICE} }}
alarms:
  journal: {tmp_path / "alarms.db"}
  communication: {{ severity: major, delay_s: 2 }}
  rules:
    - name: mains_voltage
      family: meter
      points: [v1]
      low: 207
      high: 253
      deadband: 2
      on_delay_s: 1
      severity: minor
""")
    return config, tmp_path / "alarms.db"


class Bms:
    """A bacpypes3 application that keeps the event notifications it receives."""

    def __init__(self):
        self.port = next(_ports)
        args = SimpleArgumentParser().parse_args(["--address", f"127.0.0.1/8:{self.port}", "--instance",
                                                  str(self.port)])
        self.app = Application.from_args(args)
        self.notes = asyncio.Queue()
        self.app.do_ConfirmedEventNotificationRequest = self._confirmed
        self.app.do_UnconfirmedEventNotificationRequest = self._unconfirmed

    async def _confirmed(self, apdu):
        await self.notes.put(apdu)
        await self.app.response(SimpleAckPDU(context=apdu))

    async def _unconfirmed(self, apdu):
        await self.notes.put(apdu)

    async def next(self, timeout=15, where=lambda n: True):
        deadline = time.time() + timeout
        while True:
            n = await asyncio.wait_for(self.notes.get(), max(0.1, deadline - time.time()))
            if where(n):
                return n

    def destination(self, confirmed, by_device=False, process=7):
        if by_device:
            recipient = Recipient(device=ObjectIdentifier(f"device,{self.port}"))
        else:
            mac = bytes([127, 0, 0, 1]) + self.port.to_bytes(2, "big")
            recipient = Recipient(address=DeviceAddress(networkNumber=0, macAddress=OctetString(mac)))
        return Destination(validDays=DaysOfWeek([1] * 7), fromTime=Time("00:00:00"), toTime=Time("23:59:59.99"),
                           recipient=recipient, processIdentifier=process, issueConfirmedNotifications=confirmed,
                           transitions=EventTransitionBits([1, 1, 1]))


def journal_rows(journal, alarm):
    db = sqlite3.connect(journal)
    try:
        return db.execute("SELECT kind, user, via, comment FROM transitions WHERE alarm = ? ORDER BY seq",
                          (alarm,)).fetchall()
    finally:
        db.close()


async def names(app, srv):
    out = {}
    for o in await app.read_property(srv, ObjectIdentifier(f"device,{DEVICE}"), "objectList"):
        out[str(await app.read_property(srv, o, "objectName"))] = o
    return out


def test_a_bms_registers_receives_the_trip_and_acknowledges_it_into_the_journal(sim, tmp_path):
    port = free_udp_port()
    config, journal = write_config(tmp_path, sim, port)
    bridge = Bridge(config)
    trip = "device/shop_breaker/state"

    async def go():
        bms = Bms()
        await asyncio.sleep(1.0)
        app, srv = bms.app, Address(f"127.0.0.1:{port}")
        try:
            objs = await names(app, srv)
            classes = sorted(n for n in objs if n.startswith("alarms."))
            assert classes == ["alarms.critical", "alarms.info", "alarms.major", "alarms.minor", "alarms.warning"]
            major = objs["alarms.major"]
            assert await app.read_property(srv, major, "priority") == [70, 100, 200]
            assert str(await app.read_property(srv, major, "ackRequired")) == "to-offnormal;to-fault"
            await app.write_property(srv, major, "recipientList", [bms.destination(confirmed=True)])
            back = await app.read_property(srv, major, "recipientList")
            assert len(back) == 1 and back[0].processIdentifier == 7 and back[0].issueConfirmedNotifications

            state = objs["shop_breaker.state"]
            assert str(await app.read_property(srv, state, "eventState")) == "normal"
            assert await app.read_property(srv, state, "notificationClass") == 4
            props = {str(p) for p in await app.read_property(srv, state, "propertyList")}
            assert {"acked-transitions", "event-enable", "event-time-stamps", "notify-type", "notification-class",
                    "time-delay", "event-message-texts", "event-detection-enable", "alarm-values"} <= props

            sim.api("POST", "/api/devices/shop_breaker/events", {"event": "breaker_trip", "cause": "overload"})
            n = await bms.next()
            assert n.eventObjectIdentifier == state
            assert n.initiatingDeviceIdentifier == ObjectIdentifier(f"device,{DEVICE}")
            assert (str(n.fromState), str(n.toState), str(n.notifyType)) == ("normal", "offnormal", "alarm")
            assert str(n.eventType) == "change-of-state" and n.ackRequired
            assert n.notificationClass == 4 and n.priority == 70 and n.processIdentifier == 7
            assert n.messageText == "shop_breaker Breaker state: tripped"
            assert n.eventValues.changeOfState.statusFlags[0] == 1, "IN_ALARM"
            assert (await app.read_property(srv, state, "statusFlags"))[0] == 1
            assert str(await app.read_property(srv, state, "eventState")) == "offnormal"

            ack = await app.request(GetEventInformationRequest(destination=srv))
            summaries = {s.objectIdentifier: s for s in ack.listOfEventSummaries}
            assert state in summaries and not ack.moreEvents
            assert str(summaries[state].acknowledgedTransitions) == "to-fault;to-normal", "to-offnormal unacked"
            assert list(summaries[state].eventPriorities) == [70, 100, 200]

            def acknowledge(stamp):
                return AcknowledgeAlarmRequest(
                    acknowledgingProcessIdentifier=7, eventObjectIdentifier=state,
                    eventStateAcknowledged=n.toState, timeStamp=stamp,
                    acknowledgmentSource=CharacterString("BMS operator"),
                    timeOfAcknowledgment=TimeStamp.as_dateTime(), destination=srv)

            # A time stamp that is not the transition's is refused, and nothing is acknowledged.
            with pytest.raises(ErrorRejectAbortNack) as refused:
                await app.request(acknowledge(TimeStamp(sequenceNumber=12)))
            assert "invalid-time-stamp" in str(refused.value)
            assert [r[0] for r in journal_rows(journal, trip)] == ["raised"]

            assert isinstance(await app.request(acknowledge(n.timeStamp)), SimpleAckPDU)
            a = await bms.next()
            assert str(a.notifyType) == "ack-notification" and str(a.toState) == "offnormal"
            assert "BMS operator" in a.messageText
            assert str(await app.read_property(srv, state, "ackedTransitions")) == "to-offnormal;to-fault;to-normal"
            ack = await app.request(GetEventInformationRequest(destination=srv))
            still = {s.objectIdentifier: s for s in ack.listOfEventSummaries}
            assert str(still[state].eventState) == "offnormal", "tripped still, acknowledged"
        finally:
            bms.app.close()

    try:
        asyncio.run(go())
        rows = journal_rows(journal, trip)
        assert [r[0] for r in rows] == ["raised", "acknowledged"]
        kind, user, via, comment = rows[1]
        assert (user, via) == ("BMS operator", "bacnet")
        assert "process 7" in comment
        listed = [a for a in bridge.get("/api/alarms") if a["id"] == trip]
        assert listed and listed[0]["state"]["acknowledged"] is True
    finally:
        bridge.stop()


def test_http_acks_thresholds_and_faults_reach_a_device_recipient_across_a_restart(sim, tmp_path):
    port = free_udp_port()
    config, journal = write_config(tmp_path, sim, port)
    bridge = Bridge(config)
    mains = "device/ats/source1_state"

    async def registered(bms, srv, classes):
        for c in classes:
            await bms.app.write_property(srv, ObjectIdentifier(f"notification-class,{c}"), "recipientList",
                                         [bms.destination(confirmed=False, by_device=True, process=9)])
        # A BMS on this host answers the bridge's Who-Is only on its own port: it says I-Am.
        bms.app.i_am(address=srv)
        await asyncio.sleep(0.5)

    async def first():
        bms = Bms()
        await asyncio.sleep(1.0)
        srv = Address(f"127.0.0.1:{port}")
        app = bms.app
        try:
            await registered(bms, srv, [3, 4])
            objs = await names(app, srv)
            v1 = objs["main_meter.v1"]
            assert await app.read_property(srv, v1, "highLimit") == 253.0
            assert await app.read_property(srv, v1, "lowLimit") == 207.0
            assert await app.read_property(srv, v1, "deadband") == 2.0
            assert str(await app.read_property(srv, v1, "limitEnable")) == "low-limit-enable;high-limit-enable"
            assert await app.read_property(srv, v1, "timeDelay") == 1

            # A sag below the rule's low limit: out-of-range with the limit that was crossed.
            sim.api("POST", "/api/devices/ats/events", {"event": "mains_voltage", "voltage_v": 200})
            low = await bms.next(where=lambda n: n.eventObjectIdentifier == v1)
            assert str(low.eventType) == "out-of-range" and str(low.toState) == "low-limit"
            oor = low.eventValues.outOfRange
            assert oor.exceededLimit == 207.0 and oor.deadband == 2.0 and oor.exceedingValue < 207.0
            assert low.notificationClass == 3 and low.priority == 90
            sim.api("POST", "/api/devices/ats/events", {"event": "mains_voltage", "voltage_v": 230})
            normal = await bms.next(where=lambda n: n.eventObjectIdentifier == v1)
            assert str(normal.toState) == "normal" and normal.eventValues.outOfRange.exceededLimit == 207.0

            # The meter goes silent: a fault event (change of reliability) on its voltage.
            sim.api("POST", "/api/devices/main_meter/faults", {"fault": "silent"})
            fault = await bms.next(where=lambda n: n.eventObjectIdentifier == v1)
            assert str(fault.toState) == "fault" and str(fault.eventType) == "change-of-reliability"
            # Stale first, then no answer at all: each reliability is told as it comes.
            reliabilities = [str(fault.eventValues.changeOfReliability.reliability)]
            while reliabilities[-1] != "communication-failure":
                again = await bms.next(where=lambda n: n.eventObjectIdentifier == v1)
                assert (str(again.fromState), str(again.toState)) == ("fault", "fault")
                reliabilities.append(str(again.eventValues.changeOfReliability.reliability))
            assert reliabilities in (["communication-failure"], ["unreliable-other", "communication-failure"])
            assert str(await app.read_property(srv, v1, "eventState")) == "fault"
            sim.api("DELETE", "/api/devices/main_meter/faults")
            healed = await bms.next(where=lambda n: n.eventObjectIdentifier == v1)
            assert (str(healed.fromState), str(healed.toState)) == ("fault", "normal")
            # Mains lost: the ATS's source 1 alarm; acknowledged by an operator over HTTP.
            source1 = objs["ats.source1_state"]
            sim.api("POST", "/api/devices/ats/events", {"event": "mains_lost"})
            n = await bms.next(where=lambda n: n.eventObjectIdentifier == source1)
            assert str(n.toState) == "offnormal" and n.processIdentifier == 9
            bridge.wait_alarm(mains, lambda a: a["state"]["active"])
            bridge.post("/api/alarms/acknowledge", {"id": mains, "user": "alice", "comment": "genset on"})
            a = await bms.next(where=lambda n: n.eventObjectIdentifier == source1)
            assert str(a.notifyType) == "ack-notification"
            assert "alice" in a.messageText and "http" in a.messageText
            sim.api("POST", "/api/devices/ats/events", {"event": "mains_restored"})
            back = await bms.next(where=lambda n: n.eventObjectIdentifier == source1)
            assert (str(back.fromState), str(back.toState)) == ("offnormal", "normal")

        finally:
            bms.app.close()

    async def after_restart():
        bms = Bms()
        await asyncio.sleep(1.0)
        srv = Address(f"127.0.0.1:{port}")
        try:
            kept = await bms.app.read_property(srv, ObjectIdentifier("notification-class,4"), "recipientList")
            assert len(kept) == 1 and kept[0].processIdentifier == 9
            assert kept[0].recipient.device is not None, "the device recipient, as written"
        finally:
            bms.app.close()

    try:
        asyncio.run(first())
        rows = journal_rows(journal, mains)
        assert ("acknowledged", "alice", "http") in [r[:3] for r in rows]
        bridge.stop()
        bridge = Bridge(config)
        asyncio.run(after_restart())
    finally:
        bridge.stop()
