"""The acceptance library (scenarios/acceptance/*.yaml) played to Busbar as its system under
test: each scenario's `busbar-sim test` with the parameters a QA team gives for its own SUT
(`--param gateway=... sut_http=... mail_sink=...`, the probes' defaults built on `sut_http`),
and a `busbar run` configured for that scenario's devices, its alarms mailed to the scenario's
SMTP sink. The seven run side by side, each on its own ports, so the library costs the time of
its longest scenario. Busbar passes all seven; for the EV rush hour its load manager
(`load_management:`, docs/load-management.md) is configured with the scenario's site limit as
its maximum current. The reports are validated as in test_scenarios.py."""

import json
import subprocess
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import ROOT, find_binary, stop_process
from test_scenarios import validate_junit

LIBRARY = ROOT / "scenarios/acceptance"

# The devices each scenario simulates, as the bridge is configured to read them.
CHARGER = "profile: legrand-greenup, points: { current_limit: { writable: true }, command: { writable: true } }"
DEVICES = {
    "mains-failure-genset-fails": [
        "{ name: ats, profile: socomec-atys-pm, unit_id: 1 }",
        "{ name: main_meter, profile: socomec-diris-a40, unit_id: 2 }",
    ],
    "insulation-fault": [
        "{ name: imd, profile: socomec-isom-l60, unit_id: 5 }",
        "{ name: locator, profile: socomec-isom-f60, unit_id: 6, blocks: { circuit: 6 } }",
    ],
    "tank-leak-water": ["{ name: tanks, profile: fafnir-visy-tanks, unit_id: 7, blocks: { tank: 2 } }"],
    "delivery": ["{ name: tanks, profile: fafnir-visy-tanks, unit_id: 7 }"],
    "ev-rush-hour": ["{ name: main_meter, profile: socomec-diris-a40, unit_id: 2 }"]
    + [f"{{ name: ev{i}, unit_id: {9 + i}, {CHARGER} }}" for i in range(1, 5)],
    "comm-loss-storm": [
        "{ name: ats, profile: socomec-atys-pm, unit_id: 1 }",
        "{ name: main_meter, profile: socomec-diris-a40, unit_id: 2 }",
        "{ name: tanks, profile: fafnir-visy-tanks, unit_id: 7 }",
        f"{{ name: ev1, unit_id: 10, {CHARGER} }}",
        "{ name: shop_breaker, profile: legrand-dpx3, unit_id: 14 }",
    ],
    "breaker-trip": [
        "{ name: shop_meter, profile: legrand-emdx3, unit_id: 3 }",
        "{ name: shop_breaker, profile: legrand-dpx3, unit_id: 14 }",
    ],
}

# The load manager of the scenarios that need one: the site limit of ev-rush-hour (80 A) is its
# maximum current, the green/yellow border 8 A below it.
LOAD_MANAGEMENT = {
    "ev-rush-hour": """load_management:
  meter: main_meter
  chargers: [ev1, ev2, ev3, ev4]
  max_current_a: 80
  max_charging_current_a: 72
""",
}


def bridge_config(tmp, gateway, http, mail):
    devices = "".join(f"  - {{ connection: gw, {d[1:-1].strip()} }}\n" for d in DEVICES[tmp.name])
    config = tmp / "bridge.yaml"
    config.write_text(f"""site: {{ name: {tmp.name}, id: {tmp.name} }}
writes: {{ enabled: true }}
connections: [{{ name: gw, tcp: {{ host: 127.0.0.1, port: {gateway} }} }}]
devices:
{devices}servers:
  http: {{ listen: "127.0.0.1:{http}", token: acceptance-token-0001 }}
alarms:
  journal: {tmp / "alarms.db"}
  email:
    server: 127.0.0.1
    port: {mail}
    security: none
    from: Busbar <busbar@acceptance.test>
    hold_off_s: 2
    recipients: [{{ to: ops@acceptance.test }}]
{LOAD_MANAGEMENT.get(tmp.name, "")}""")
    return config


def play(tmp, index):
    """busbar-sim test on one scenario with this run's ports, Busbar as the SUT."""
    name = tmp.name
    gateway, http, mail = (26000 + 10 * index + k for k in range(3))
    junit, report = tmp / "junit.xml", tmp / "report.json"
    scenario = LIBRARY / f"{name}.yaml"
    mail_param = ["--param", f"mail_sink=127.0.0.1:{mail}"] if "mail_sink:" in scenario.read_text() else []
    with open(tmp / "sim.log", "w") as err:
        sim = subprocess.Popen(
            [find_binary("busbar-sim"), "test", str(scenario), "--param", f"gateway=127.0.0.1:{gateway}",
             "--param", f"sut_http=http://127.0.0.1:{http}", *mail_param, "--report", f"junit={junit},json={report}"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
    time.sleep(0.5)
    with open(tmp / "bridge.log", "w") as err:
        bridge = subprocess.Popen([find_binary("busbar"), "run", "--config", str(bridge_config(tmp, gateway, http, mail))],
                                  cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    try:
        out, _ = sim.communicate(timeout=300)
    finally:
        stop_process(bridge)
    return sim.returncode, out, junit, report


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    names = sorted(DEVICES)
    dirs = []
    for name in names:
        d = tmp_path_factory.mktemp("acceptance") / name
        d.mkdir()
        dirs.append(d)
    with ThreadPoolExecutor(len(names)) as pool:
        results = list(pool.map(play, dirs, range(len(names))))
    return dict(zip(names, results))


def test_every_scenario_of_the_library_is_played():
    assert sorted(p.stem for p in LIBRARY.glob("*.yaml")) == sorted(DEVICES)


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_busbar_meets_the_acceptance_scenario(runs, name):
    code, out, junit, report = runs[name]
    assert report.exists(), f"{name}: no report ({code}): {out}"
    validate_junit(junit)
    r = json.loads(report.read_text())
    failed = {e["name"] for e in r["expectations"] if not e["passed"]}
    assert failed == set(), out
    assert code == 0, out
    assert r["parameters"]["sut_http"].startswith("http://127.0.0.1:26"), r["parameters"]
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    assert props["parameter.gateway"] == r["parameters"]["gateway"]
