"""OPC UA HistoryRead raw served from the InfluxDB history (Debian's influxdb 1.6, started
here): `busbar demo --influxdb` writes, is restarted (its in-memory rings are gone), and asyncua
reads a meter's voltage history back through continuation points, two values per read; the
values and source times equal those of the same query run directly on influxd. Processed reads
(Average, Minimum, Maximum, Count over 2 s intervals) equal InfluxQL's MEAN, MIN, MAX and COUNT
grouped by time(2s) on the same window; Interpolative equals the linear interpolation of the
raw rows influxd returns."""

import asyncio
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest
from asyncua import Client, ua

from conftest import ROOT, find_binary, stop_process
from influx import free_port, influxd, wait_until  # noqa: F401 (influxd is a fixture)

NAMESPACE = "urn:busbar:site"


def start(influxd, tmp_path, opcua_port):
    return subprocess.Popen(
        [find_binary("busbar"), "demo", "--modbus", "127.0.0.1:0", "--http", f"127.0.0.1:{free_port()}",
         "--opcua", f"127.0.0.1:{opcua_port}", "--bacnet", "127.0.0.1:0", "--snmp", "127.0.0.1:0",
         "--sim-gateway", "127.0.0.1:0", "--sim-control", "127.0.0.1:0",
         "--influxdb", f"{influxd.url}?db=busbar", "--history-buffer", str(tmp_path / "buf")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def v1_rows(influxd, start_ms, end_ms):
    return influxd.values("SELECT v1 FROM meter WHERE device='main_meter' "
                          f"AND time >= {start_ms}ms AND time <= {end_ms}ms ORDER BY time ASC")


async def history(url, start, end, per_read):
    async with Client(url) as c:
        ns = await c.get_namespace_index(NAMESPACE)
        node = c.get_node(ua.NodeId("main_meter/v1", ns))
        values, reads, point = [], 0, None
        while True:
            details = ua.ReadRawModifiedDetails(IsReadModified=False, StartTime=start, EndTime=end,
                                                NumValuesPerNode=per_read, ReturnBounds=False)
            result = await node.history_read(details, point)
            result.StatusCode.check()
            reads += 1
            values.extend(result.HistoryData.DataValues)
            point = result.ContinuationPoint
            if not point:
                return values, reads


async def processed(url, aggregate, start, end, interval_ms):
    async with Client(url) as c:
        ns = await c.get_namespace_index(NAMESPACE)
        details = ua.ReadProcessedDetails(StartTime=start, EndTime=end, ProcessingInterval=interval_ms,
                                          AggregateType=[ua.NodeId(aggregate)])
        params = ua.HistoryReadParameters(HistoryReadDetails=details,
                                          TimestampsToReturn=ua.TimestampsToReturn.Both,
                                          ReleaseContinuationPoints=False,
                                          NodesToRead=[ua.HistoryReadValueId(NodeId=ua.NodeId("main_meter/v1", ns))])
        result = (await c.uaclient.history_read(params))[0]
        result.StatusCode.check()
        return result.HistoryData.DataValues


def check_aggregates(influxd, url, t0_ms, end_ms):
    """Processed reads over whole 2 s intervals inside [t0, end] against influxd's own."""
    a = (t0_ms // 2000 + 1) * 2000
    b = (end_ms // 2000) * 2000
    assert b - a >= 4000, "at least two intervals"
    start = datetime.fromtimestamp(a / 1000, timezone.utc)
    stop = datetime.fromtimestamp(b / 1000, timezone.utc)
    rows = influxd.values("SELECT MEAN(v1), MIN(v1), MAX(v1), COUNT(v1) FROM meter WHERE device='main_meter' "
                          f"AND time >= {a}ms AND time < {b}ms GROUP BY time(2s)")
    assert len(rows) == (b - a) // 2000
    for aggregate, column in [(ua.ObjectIds.AggregateFunction_Average, 1), (ua.ObjectIds.AggregateFunction_Minimum, 2),
                              (ua.ObjectIds.AggregateFunction_Maximum, 3), (ua.ObjectIds.AggregateFunction_Count, 4)]:
        got = asyncio.run(processed(url, aggregate, start, stop, 2000))
        want = [r[column] for r in rows]
        if column == 4:
            assert [v.Value.Value for v in got] == want
        else:
            assert [v.Value.Value if v.StatusCode.is_good() else None for v in got] == pytest.approx(want)
    raw = [(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000, v) for t, v in
           influxd.values("SELECT v1 FROM meter WHERE device='main_meter' ORDER BY time ASC")]
    got = asyncio.run(processed(url, ua.ObjectIds.AggregateFunction_Interpolative, start, stop, 2000))
    interpolated = 0
    for k, v in enumerate(got):
        t = a + k * 2000
        before = [r for r in raw if r[0] <= t]
        after = [r for r in raw if r[0] > t]
        if not before:
            assert v.StatusCode.name == "BadNoData"
            continue
        (t0, v0), later = before[-1], after[0] if after else None
        if t0 == t or later is None:
            want = v0
        else:
            want = v0 + (later[1] - v0) * (t - t0) / (later[0] - t0)
            interpolated += 1
        assert v.Value.Value == pytest.approx(want)
    assert interpolated >= 1


def test_history_read_raw_comes_from_influxdb_across_a_restart(influxd, tmp_path):
    port = free_port()
    url = f"opc.tcp://127.0.0.1:{port}/"
    t0 = datetime.now(timezone.utc) - timedelta(seconds=2)
    t0_ms = int(t0.timestamp() * 1000)
    proc = start(influxd, tmp_path, port)
    try:
        assert wait_until(lambda: len(v1_rows(influxd, t0_ms, int(time.time() * 1000) + 60_000)) >= 8, 40)
    finally:
        stop_process(proc)
    # The window closes before the second start: nothing the second run writes falls in it.
    end = datetime.now(timezone.utc)
    end_ms = int(end.timestamp() * 1000)
    restart = end
    proc = start(influxd, tmp_path, port)
    try:
        assert wait_until(lambda: _reachable(url), 30)
        expected = v1_rows(influxd, t0_ms, end_ms)
        values, reads = asyncio.run(history(url, t0, end, 2))
        assert v1_rows(influxd, t0_ms, end_ms) == expected, 'the window changed during the read'
        got = [(int(v.SourceTimestamp.replace(tzinfo=timezone.utc).timestamp() * 1000), v.Value.Value)
               for v in values]
        want = [(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000, v) for t, v in expected]
        assert [g[1] for g in got] == [w[1] for w in want]
        assert [g[0] for g in got] == [round(w[0]) for w in want]
        assert all(v.StatusCode.is_good() for v in values)
        assert reads == (len(expected) + 1) // 2, 'two values per read, continuation points to the end'
        # Values from before the restart: the in-memory rings could not have them.
        assert got[0][0] < restart.timestamp() * 1000
        # Newest first when the start is after the end.
        backward, _ = asyncio.run(history(url, end, t0, 0))
        assert [v.Value.Value for v in backward] == [g[1] for g in reversed(got)]
        check_aggregates(influxd, url, t0_ms, end_ms)
    finally:
        stop_process(proc)


def _reachable(url):
    async def go():
        async with Client(url):
            return True
    try:
        return asyncio.run(go())
    except Exception:
        return False
