"""What can be checked of docker/ without a Docker engine: compose.yaml is valid for Docker
Compose (docker-compose 1.29's own validation); the Dockerfile parses (the dockerfile package
wraps Docker's own Go parser), copies only files that exist and that .dockerignore lets
through, uses the toolchain rust-toolchain.toml pins, and exposes the ports the config serves;
every file compose mounts exists; Grafana's provisioning matches the dashboards; the bridge's
config is valid with the environment compose gives it."""

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib

import dockerfile
import pytest
import yaml

from conftest import ROOT, find_binary

DOCKER = ROOT / "docker"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def stages():
    """Dockerfile instructions per stage name."""
    out, current = {}, None
    for cmd in dockerfile.parse_file(str(DOCKER / "Dockerfile")):
        if cmd.cmd == "FROM":
            current = cmd.value[-1] if len(cmd.value) == 3 and cmd.value[1].upper() == "AS" else cmd.value[0]
            out[current] = [cmd]
        elif current:
            out[current].append(cmd)
    return out


def test_compose_validates():
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose (Debian package) is installed by scripts/test"
    r = subprocess.run([exe, "-f", str(DOCKER / "compose.yaml"), "config", "-q"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_images_and_their_binaries(stages):
    assert {"build", "busbar", "busbar-sim"} <= set(stages), list(stages)
    run = " ".join(" ".join(c.value) for c in stages["build"] if c.cmd == "RUN")
    assert "--locked" in run and "-p busbar " in run and "-p busbar-sim" in run, run
    for stage in ("busbar", "busbar-sim"):
        entry = [c for c in stages[stage] if c.cmd == "ENTRYPOINT"]
        assert entry and entry[0].value[0] == f"/usr/local/bin/{stage}"
        copies = [list(c.value) for c in stages[stage] if c.cmd == "COPY"]
        assert [f"/out/{stage}", f"/usr/local/bin/{stage}"] in copies, copies


def test_the_toolchain_is_the_pinned_one():
    pinned = tomllib.loads((ROOT / "rust-toolchain.toml").read_text())["toolchain"]["channel"]
    args = [c for c in dockerfile.parse_file(str(DOCKER / "Dockerfile")) if c.cmd == "ARG"]
    assert f"RUST_VERSION={pinned}" in [a.value[0] for a in args]


def ignored(path):
    patterns = [p.strip().rstrip("/") for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    return any(fnmatch.fnmatch(path, p) or path.startswith(p + "/") for p in patterns)


def test_copied_files_exist_and_reach_the_build(stages):
    for stage, cmds in stages.items():
        for c in cmds:
            if c.cmd != "COPY" or any(f.startswith("--from") for f in c.flags):
                continue
            for src in c.value[:-1]:
                assert (ROOT / src).exists(), f"{stage}: COPY {src}: no such file"
                if src != ".":
                    assert not ignored(src), f"{stage}: COPY {src} is excluded by .dockerignore"
    assert ignored("target") and ignored("tests/dashboards/node_modules")


def test_exposed_ports_are_the_served_ones(stages):
    exposed = {p for c in stages["busbar"] if c.cmd == "EXPOSE" for p in c.value}
    config = (ROOT / "config" / "demo.yaml").read_text()
    served = {m for m in re.findall(r"listen: \"?[^\s\"]*:(\d+)", config)}
    assert {p.split("/")[0] for p in exposed} == served, (exposed, served)


def test_mounted_files_exist(compose):
    for name, service in compose["services"].items():
        for v in service.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                assert (DOCKER / src).resolve().exists(), f"{name}: {src} does not exist"


def test_grafana_provisioning_matches_the_dashboards(compose):
    grafana = compose["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("."))
    provider = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/busbar.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert mounts["../dashboards"] == path
    datasource = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/busbar.yaml").read_text())
    ds = datasource["datasources"][0]
    assert ds["type"] == "influxdb"
    for f in (ROOT / "dashboards").glob("*.json"):
        var = json.loads(f.read_text())["templating"]["list"][0]
        assert var["name"] == "datasource" and var["current"]["value"] == ds["uid"], f.name
    text = (ROOT / "dashboards/provisioning/datasources/busbar.yaml").read_text()
    for ref in re.findall(r"\$\{(\w+)\}", text):
        assert ref in grafana["environment"], f"the datasource needs {ref} from Grafana's environment"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(path + "/") and (ROOT / "dashboards" / home[len(path) + 1:]).exists()


def test_the_bridge_config_is_valid_in_the_container_environment(compose):
    bridge = compose["services"]["bridge"]
    env = {k: str(v) for k, v in bridge["environment"].items()}
    r = subprocess.run([find_binary("busbar"), "check", "--config", "config/demo.yaml"], cwd=ROOT,
                       env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert bridge["depends_on"]["influxdb"]["condition"] == "service_healthy"
    assert env["BUSBAR_INFLUXDB_URL"].startswith("http://influxdb:")
    sim_cmd = compose["services"]["sim"]["command"]
    assert "0.0.0.0:15020" in sim_cmd, "the bridge reaches the simulator's gateway on port 15020"
