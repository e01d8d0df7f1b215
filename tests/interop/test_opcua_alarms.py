"""Alarms & Conditions with asyncua (a client nobody here wrote): a breaker trip in the
simulator reaches an event subscription on the Server object as an OffNormalAlarmType
condition with its standard fields; an operator acknowledges it over OPC UA and the journal
(read with Python's sqlite3) names OPC UA and the user; a viewer's Acknowledge is refused; an
acknowledgement over HTTP shows as an event too; ConditionRefresh re-sends the retained
conditions between RefreshStart and RefreshEnd.

The where clauses are OfType, GreaterThanOrEqual and And, which async-opcua evaluates. Its
comparisons cover numbers and booleans only, so asyncua's default where clause (InList of
NodeIds on EventType) matches nothing: docs/opcua.md says so, and these tests build theirs.
async-opcua also gives an event item that asks for queue size 0 a queue of 1, too small for a
refresh: the items here ask for 1000. HistoryReadEvents on the Server reads the journal, across a
restart, forward and backward, one event per read through the continuation points."""

import asyncio
import sqlite3
import time

from asyncua import Client, ua
from asyncua.common.events import get_filter_from_event_type

from test_alarms_journal import Bridge, free_port, sim, write_config  # noqa: F401 (fixture)

TRIP = "device/shop_breaker/state"


class Events:
    def __init__(self):
        self.queue = asyncio.Queue()

    def event_notification(self, event):
        self.queue.put_nowait(event)

    async def next(self, match, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no matching event")
            e = await asyncio.wait_for(self.queue.get(), left)
            if match(e):
                return e


def config(tmp_path, sim):
    port = free_port()
    cfg, journal = write_config(tmp_path, sim, "Conditions")
    text = cfg.read_text().replace("servers:\n", f"""servers:
  opcua:
    listen: "127.0.0.1:{port}"
    pki_dir: {tmp_path / "pki"}
    none_endpoint: true
    users:
      - {{ name: alice, password: alice-secret-1, role: operator }}
      - {{ name: victor, password: victor-secret-1, role: viewer }}
""")
    cfg.write_text(text)
    return cfg, journal, f"opc.tcp://127.0.0.1:{port}/"


async def session(url, user, password):
    c = Client(url)
    c.set_user(user)
    c.set_password(password)
    await c.connect()
    return c


async def alarm_filter(client, min_severity=None):
    """The fields of OffNormalAlarmType; where OfType(OffNormalAlarmType) and, if given,
    Severity >= min_severity."""
    off_normal = ua.NodeId(ua.ObjectIds.OffNormalAlarmType)
    f = await get_filter_from_event_type([client.get_node(off_normal)], where_clause_generation=False)
    if min_severity is None:
        return f
    of_type = ua.ContentFilterElement(FilterOperator=ua.FilterOperator.OfType,
                                      FilterOperands=[ua.LiteralOperand(Value=ua.Variant(off_normal))])
    severity = ua.SimpleAttributeOperand(TypeDefinitionId=ua.NodeId(ua.ObjectIds.BaseEventType),
                                         BrowsePath=[ua.QualifiedName("Severity", 0)],
                                         AttributeId=ua.AttributeIds.Value)
    at_least = ua.ContentFilterElement(
        FilterOperator=ua.FilterOperator.GreaterThanOrEqual,
        FilterOperands=[severity, ua.LiteralOperand(Value=ua.Variant(min_severity, ua.VariantType.UInt16))])
    both = ua.ContentFilterElement(FilterOperator=ua.FilterOperator.And,
                                   FilterOperands=[ua.ElementOperand(Index=1), ua.ElementOperand(Index=2)])
    f.WhereClause = ua.ContentFilter(Elements=[both, of_type, at_least])
    return f


def journal_rows(journal, alarm):
    db = sqlite3.connect(journal)
    try:
        return db.execute("SELECT kind, user, via, comment FROM transitions WHERE alarm = ? ORDER BY seq",
                          (alarm,)).fetchall()
    finally:
        db.close()


def test_a_trip_is_a_condition_acknowledged_over_opcua_and_journaled(sim, tmp_path):
    cfg, journal, url = config(tmp_path, sim)
    bridge = Bridge(cfg)

    async def go():
        alice = await session(url, "alice", "alice-secret-1")
        victor = await session(url, "victor", "victor-secret-1")
        try:
            handler = Events()
            sub = await alice.create_subscription(50, handler)
            server = alice.get_node(ua.ObjectIds.Server)
            off_normal = alice.get_node(ua.ObjectIds.OffNormalAlarmType)
            await sub.subscribe_events(server, off_normal, evfilter=await alarm_filter(alice, 500),
                                       queuesize=1000)
            # A second subscription asks for critical only (900): the major trip (700) passes it by.
            critical = Events()
            sub_critical = await alice.create_subscription(50, critical)
            await sub_critical.subscribe_events(server, off_normal, evfilter=await alarm_filter(alice, 900))

            sim.api("POST", "/api/devices/shop_breaker/events", {"event": "breaker_trip", "cause": "overload"})
            raised = await handler.next(lambda e: e.ConditionName == TRIP and getattr(e, "ActiveState/Id"))
            assert raised.EventType == ua.NodeId(ua.ObjectIds.OffNormalAlarmType)
            assert raised.SourceName == "shop_breaker/state"
            assert raised.Severity == 700
            assert raised.Message.Text == "shop_breaker Breaker state: tripped"
            assert raised.Retain is True
            assert getattr(raised, "AckedState/Id") is False
            assert getattr(raised, "EnabledState/Id") is True
            assert raised.ConditionClassId == ua.NodeId(ua.ObjectIds.ProcessConditionClassType)
            condition = alice.get_node(raised.NodeId)
            assert critical.queue.empty()
            # The condition sits under its device.
            device = victor.get_node(ua.NodeId("shop_breaker", raised.NodeId.NamespaceIndex))
            conds = await device.get_referenced_nodes(ua.ObjectIds.HasCondition)
            assert raised.NodeId in [n.nodeid for n in conds]

            ack = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge)
            text = ua.LocalizedText("breaker reset pending", "en")
            # A viewer may not acknowledge.
            try:
                await victor.get_node(raised.NodeId).call_method(ack, ua.Variant(raised.EventId, ua.VariantType.ByteString),
                                                                 text)
                raise AssertionError("the viewer's Acknowledge was accepted")
            except ua.UaStatusCodeError as e:
                assert e.code == ua.StatusCodes.BadUserAccessDenied
            # An EventId we never sent is refused.
            try:
                await condition.call_method(ack, ua.Variant(b"nope", ua.VariantType.ByteString), text)
                raise AssertionError("an unknown EventId was accepted")
            except ua.UaStatusCodeError as e:
                assert e.code == ua.StatusCodes.BadEventIdUnknown

            await condition.call_method(ack, ua.Variant(raised.EventId, ua.VariantType.ByteString), text)
            acked = await handler.next(lambda e: e.ConditionName == TRIP and getattr(e, "AckedState/Id"))
            assert acked.Comment.Text == "breaker reset pending"
            assert acked.ClientUserId == "alice@opcua"
            assert getattr(acked, "ActiveState/Id") is True
            # Acknowledging twice: the standard's refusal.
            try:
                await condition.call_method(ack, ua.Variant(acked.EventId, ua.VariantType.ByteString), text)
                raise AssertionError("a second Acknowledge was accepted")
            except ua.UaStatusCodeError as e:
                assert e.code == ua.StatusCodes.BadConditionBranchAlreadyAcked

            comment = ua.NodeId(ua.ObjectIds.ConditionType_AddComment)
            await condition.call_method(comment, ua.Variant(acked.EventId, ua.VariantType.ByteString),
                                        ua.LocalizedText("electrician called", "en"))
            noted = await handler.next(lambda e: e.ConditionName == TRIP and e.Comment.Text == "electrician called")
            assert noted.ClientUserId == "alice@opcua"
            # Three events went to the first subscription; none passed the critical filter.
            assert critical.queue.empty()
            return raised.NodeId
        finally:
            await victor.disconnect()
            await alice.disconnect()

    try:
        asyncio.run(go())
        rows = journal_rows(journal, TRIP)
        assert ("acknowledged", "alice", "opcua", "breaker reset pending") in rows
        assert ("commented", "alice", "opcua", "electrician called") in rows
        assert bridge.get("/api/alarms/all") and [a for a in bridge.get("/api/alarms/all")
                                                 if a["id"] == TRIP][0]["state"]["acknowledged"]
    finally:
        bridge.stop()


def test_http_acknowledgement_shows_and_condition_refresh_resends(sim, tmp_path):
    cfg, journal, url = config(tmp_path, sim)
    bridge = Bridge(cfg)

    async def go():
        alice = await session(url, "alice", "alice-secret-1")
        try:
            handler = Events()
            sub = await alice.create_subscription(50, handler)
            server = alice.get_node(ua.ObjectIds.Server)
            # No where clause: every event, RefreshStart / RefreshEnd too, with the alarm fields.
            await sub.subscribe_events(server, alice.get_node(ua.ObjectIds.OffNormalAlarmType),
                                       evfilter=await alarm_filter(alice), queuesize=1000)
            sim.api("POST", "/api/devices/shop_breaker/events", {"event": "breaker_trip", "cause": "overload"})
            await handler.next(lambda e: getattr(e, "ConditionName", None) == TRIP)
            bridge.post("/api/alarms/acknowledge", {"id": TRIP, "user": "bob", "comment": "seen on the panel"})
            acked = await handler.next(lambda e: getattr(e, "ConditionName", None) == TRIP
                                       and getattr(e, "AckedState/Id", False))
            assert acked.ClientUserId == "bob@http" and acked.Comment.Text == "seen on the panel"

            await alice.get_node(ua.ObjectIds.ConditionType).call_method(
                ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh),
                ua.Variant(sub.subscription_id, ua.VariantType.UInt32))
            await handler.next(lambda e: e.EventType == ua.NodeId(ua.ObjectIds.RefreshStartEventType))
            seen = []
            while True:
                e = await handler.next(lambda e: True)
                if e.EventType == ua.NodeId(ua.ObjectIds.RefreshEndEventType):
                    break
                seen.append(e)
            # The trip is still active (acknowledged): retained, so it is in the refresh.
            names = [e.ConditionName for e in seen]
            assert TRIP in names
            assert all(e.Retain for e in seen)
            refreshed = [e for e in seen if e.ConditionName == TRIP][0]
            assert getattr(refreshed, "AckedState/Id") is True and getattr(refreshed, "ActiveState/Id") is True
            # A subscription of another session is not ours to refresh.
            try:
                await alice.get_node(ua.ObjectIds.ConditionType).call_method(
                    ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh),
                    ua.Variant(sub.subscription_id + 1000, ua.VariantType.UInt32))
                raise AssertionError("refresh of an unknown subscription was accepted")
            except ua.UaStatusCodeError as e:
                assert e.code == ua.StatusCodes.BadSubscriptionIdInvalid
        finally:
            await alice.disconnect()

    try:
        asyncio.run(go())
    finally:
        bridge.stop()


async def event_history(client, evfilter, start, end, per_read):
    """HistoryReadEvents on the Server, walking the continuation points to the end; the events
    and how many reads it took."""
    from asyncua.common.events import Event
    events, reads, point = [], 0, None
    while True:
        details = ua.ReadEventDetails(StartTime=start, EndTime=end, NumValuesPerNode=per_read, Filter=evfilter)
        params = ua.HistoryReadParameters(HistoryReadDetails=details, TimestampsToReturn=ua.TimestampsToReturn.Both,
                                          ReleaseContinuationPoints=False,
                                          NodesToRead=[ua.HistoryReadValueId(NodeId=ua.NodeId(ua.ObjectIds.Server),
                                                                             ContinuationPoint=point)])
        result = (await client.uaclient.history_read(params))[0]
        result.StatusCode.check()
        reads += 1
        for fields in result.HistoryData.Events:
            events.append(Event.from_event_fields(evfilter.SelectClauses, fields.EventFields))
        point = result.ContinuationPoint
        if not point:
            return events, reads


def test_event_history_comes_from_the_journal_across_a_restart(sim, tmp_path):
    from datetime import datetime, timedelta, timezone
    cfg, journal, url = config(tmp_path, sim)
    bridge = Bridge(cfg)
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    try:
        sim.api("POST", "/api/devices/shop_breaker/events", {"event": "breaker_trip", "cause": "overload"})
        bridge.wait_alarm(TRIP, lambda a: a["state"]["active"])
        bridge.post("/api/alarms/acknowledge", {"id": TRIP, "user": "bob", "comment": "history"})
    finally:
        bridge.stop()
    bridge = Bridge(cfg)

    async def go():
        c = await session(url, "victor", "victor-secret-1")
        try:
            server = c.get_node(ua.ObjectIds.Server)
            notifier = await server.read_attribute(ua.AttributeIds.EventNotifier)
            assert notifier.Value.Value & 4, "the Server's EventNotifier has HistoryRead"
            evfilter = await alarm_filter(c)
            end = datetime.now(timezone.utc) + timedelta(minutes=1)
            forward, reads = await event_history(c, evfilter, start, end, 1)
            backward, _ = await event_history(c, evfilter, end, start, 0)
            return forward, reads, backward
        finally:
            await c.disconnect()

    try:
        forward, reads, backward = asyncio.run(go())
    finally:
        bridge.stop()
    db = sqlite3.connect(journal)
    try:
        rows = db.execute("SELECT seq, alarm, kind FROM transitions ORDER BY time_ms, seq").fetchall()
    finally:
        db.close()
    # Every journaled transition once, oldest first, one per read (continuation points).
    assert [e.EventId for e in forward] == [f"busbar-t{seq}".encode() for seq, _, _ in rows]
    assert len(rows) >= 2 and reads == len(rows)
    assert [e.EventId for e in backward] == [e.EventId for e in reversed(forward)]
    trip = [e for e in forward if e.ConditionName == TRIP]
    assert [(getattr(e, "ActiveState/Id"), getattr(e, "AckedState/Id")) for e in trip] == [(True, False), (True, True)]
    assert trip[1].ClientUserId == "bob@http" and trip[1].Comment.Text == "history"
