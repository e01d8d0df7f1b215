"""Every query of every dashboard in dashboards/ (template variables, panels, annotations) runs
against a real influxd after the demo site has played a simulated hour (the simulator at 40x:
the mains failure, the fuel delivery, the insulation fault, the cars), and returns data.

Grafana is not run here (it is not packaged for Debian); the queries are expanded the way its
InfluxDB datasource expands them: `$timeFilter` becomes a time condition, `$__interval` an
interval, a single-value variable its value, a multi-value one `(a|b|c)` with regex
metacharacters escaped."""

import json
import re
import time
import urllib.request

import pytest

from conftest import ROOT
from influx import free_port, influxd, start_demo, wait_until  # noqa: F401 (influxd is a fixture)

SPEED = 40
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))


def regex_escape(v):
    return re.sub(r"([\\^$*+?.()|{}\[\]/-])", r"\\\1", v)


def expand(query, variables):
    q = query.replace("$timeFilter", "time > now() - 2h").replace("$__interval", "10s")
    # Longest names first, so that $device does not eat the start of $devices.
    for name in sorted(variables, key=len, reverse=True):
        q = q.replace("$" + name, variables[name])
    return q


def rows_of(influxd, query):
    result = influxd.query(query)["results"][0]
    assert "error" not in result, f"{query}\n-> {result['error']}"
    return [(s.get("tags", {}), row) for s in result.get("series", []) for row in s["values"]]


def resolve_variables(influxd, dashboard):
    """Each query variable's values, in order (a later variable may use an earlier one)."""
    values = {}
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        found = sorted({row[1] for _, row in rows_of(influxd, expand(var["query"], values))})
        assert found, f"{dashboard['uid']}: variable ${var['name']} has no values: {var['query']}"
        if var.get("multi") or var.get("includeAll"):
            values[var["name"]] = "(" + "|".join(regex_escape(v) for v in found) + ")"
        else:
            values[var["name"]] = found[0]
    return values


@pytest.fixture(scope="module")
def played_hour(tmp_path_factory):
    """influxd, and the demo's history of one simulated hour in it."""
    tmp = tmp_path_factory.mktemp("dashboards")
    from influx import Influxd
    db = Influxd(tmp)
    control = free_port()
    proc, _ = start_demo(db, tmp / "buf", extra=["--speed", str(SPEED), "--alarm-journal", str(tmp / "alarms.db")],
                         sim_control=f"127.0.0.1:{control}")

    def sim_time():
        with urllib.request.urlopen(f"http://127.0.0.1:{control}/api/clock", timeout=2) as r:
            return json.loads(r.read())["sim_time_s"]

    try:
        assert wait_until(lambda: sim_time() >= 3600, 3600 / SPEED + 60), "the simulator did not play an hour"
        time.sleep(3)  # the last batch reaches influxd
        yield db
    finally:
        proc.kill()
        proc.wait()
        db.stop()


def test_the_dashboards_are_there():
    assert [d.stem for d in DASHBOARDS] == ["alarms", "ats", "energy", "ev", "insulation", "site", "tanks"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_query_returns_data(played_hour, path):
    dashboard = json.loads(path.read_text())
    variables = resolve_variables(played_hour, dashboard)
    checked = 0
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            q = expand(target["query"], variables)
            values = [v for _, row in rows_of(played_hour, q) for v in row[1:] if v is not None]
            assert values, f"{path.name}: panel '{panel['title']}' ({target['refId']}) returns no data:\n{q}"
            checked += 1
    for annotation in dashboard["annotations"]["list"]:
        if "target" in annotation:
            q = expand(annotation["target"]["query"], variables)
            assert rows_of(played_hour, q), f"{path.name}: annotation '{annotation['name']}' finds no event:\n{q}"
            checked += 1
    assert checked >= 5


def test_the_hour_shows_its_events(played_hour):
    """Not only data: the data of the scenario's events. The mains failure moved the ATS to
    source II, the delivery raised tank 2, the insulation fault raised an alarm."""
    positions = {row[1] for _, row in rows_of(played_hour, "SELECT position FROM transfer_switch WHERE time > now() - 2h")}
    assert {2, 3} <= positions, positions
    deliveries = rows_of(played_hour, expand(
        json.loads((ROOT / "dashboards" / "tanks.json").read_text())["annotations"]["list"][1]["target"]["query"],
        {"site": "station-nord", "device": "tanks", "tank": "(2)"}))
    assert deliveries, "the delivery to tank 2 is an annotation"
    alarms = {row[1] for _, row in rows_of(played_hour, "SELECT alarm_state FROM insulation_monitor WHERE time > now() - 2h")}
    assert alarms & {1, 2}, alarms
