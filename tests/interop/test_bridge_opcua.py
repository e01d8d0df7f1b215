"""The bridge's OPC UA server with asyncua (a client nobody on this team wrote): browse, values
with units and status, subscriptions fed by simulator events, BadCommunicationError when a
device goes silent, writes reaching the simulated device, and a secure session with a user."""

import asyncio
import datetime
import re
import subprocess
import time
import xml.etree.ElementTree as ET
import urllib.request
from pathlib import Path

import pytest
from asyncua import Client, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography.x509.oid import ExtendedKeyUsageOID

from conftest import ROOT, find_binary

NS = "urn:busbar:site"


def run(coro):
    return asyncio.run(coro)


async def node(client, point_id):
    ns = await client.get_namespace_index(NS)
    return client.get_node(ua.NodeId(point_id, ns))


def test_browse_read_units_and_status(demo):
    demo.wait_good("main_meter/v1")

    async def go():
        async with Client(demo.opcua) as c:
            ns = await c.get_namespace_index(NS)
            objects = c.nodes.objects
            busbar = await objects.get_child([f"{ns}:Busbar", f"{ns}:station-nord", f"{ns}:main_meter"])
            names = {(await ch.read_browse_name()).Name for ch in await busbar.get_children()}
            assert {"v1", "frequency", "ea_import", "Profile", "CommStatus", "LastUpdate"} <= names
            await asyncio.sleep(1.2)
            comm = await (await busbar.get_child(f"{ns}:CommStatus")).read_value()
            assert comm == "online"
            assert (await (await busbar.get_child(f"{ns}:LastUpdate")).read_value()).endswith("Z")
            v1 = await node(c, "main_meter/v1")
            dv = await v1.read_data_value()
            assert dv.StatusCode.is_good()
            assert 207 <= dv.Value.Value <= 253
            assert dv.SourceTimestamp is not None
            eu = await (await v1.get_child("0:EngineeringUnits")).read_value()
            assert eu.DisplayName.Text == "V"
            assert eu.UnitId == (ord("V") << 16) | (ord("L") << 8) | ord("T")
            rng = await (await v1.get_child("0:EURange")).read_value()
            assert (rng.Low, rng.High) == (0.0, 460.0)
            typedef = await v1.read_type_definition()
            assert typedef == ua.NodeId(ua.ObjectIds.AnalogItemType)
            # Repeated blocks are folders: Tank 3.
            tank3 = await c.nodes.objects.get_child([f"{ns}:Busbar", f"{ns}:station-nord", f"{ns}:tanks", f"{ns}:Tank 3"])
            children = await tank3.get_children()
            assert "volume" in [(await ch.read_browse_name()).Name for ch in children]

    run(go())


def exported_nodes():
    """`busbar export nodeset` of the demo site: string id -> (browse name, parent, type definition)."""
    out = subprocess.run([find_binary("busbar"), "export", "nodeset"], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    ua_ns = "{http://opcfoundation.org/UA/2011/03/UANodeSet.xsd}"
    bare = lambda nid: nid.split(";s=", 1)[1] if ";s=" in nid else nid  # noqa: E731
    nodes = {}
    for el in ET.fromstring(out.stdout):
        if el.tag not in (ua_ns + "UAObject", ua_ns + "UAVariable", ua_ns + "UAMethod"):
            continue
        typedef = None
        for ref in el.iter(ua_ns + "Reference"):
            if ref.get("ReferenceType") == "HasTypeDefinition":
                typedef = ref.text
        browse = re.sub(r"^\d+:", "", el.get("BrowseName"))
        nodes[bare(el.get("NodeId"))] = (browse, bare(el.get("ParentNodeId")), typedef)
    return nodes


async def browse_forward(c, nid, page):
    """Every hierarchical forward reference of `nid`, asked `page` at a time through BrowseNext."""
    desc = ua.BrowseDescription()
    desc.NodeId = nid
    desc.BrowseDirection = ua.BrowseDirection.Forward
    desc.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
    desc.IncludeSubtypes = True
    desc.NodeClassMask = 0
    desc.ResultMask = ua.BrowseResultMask.All
    params = ua.BrowseParameters()
    params.View = ua.ViewDescription()
    params.View.Timestamp = ua.get_win_epoch()
    params.RequestedMaxReferencesPerNode = page
    params.NodesToBrowse = [desc]
    [result] = await c.uaclient.browse(params)
    assert result.StatusCode.is_good(), (nid, result.StatusCode)
    refs = list(result.References or [])
    cp = result.ContinuationPoint
    while cp:
        assert len(result.References or []) <= page
        nxt = ua.BrowseNextParameters()
        nxt.ReleaseContinuationPoints = False
        nxt.ContinuationPoints = [cp]
        [result] = await c.uaclient.browse_next(nxt)
        refs += list(result.References or [])
        cp = result.ContinuationPoint
    return refs


def test_the_served_address_space_is_the_exported_nodeset(demo):
    """Walking the live server from the Busbar folder, three references per Browse/BrowseNext,
    finds every node the exported nodeset describes, under its parent, with its browse name and
    type definition, and no other node of ours but the alarm conditions; a point's parent and
    its device's event sources are browsed back."""
    expected = exported_nodes()
    demo.wait_good("main_meter/v1")

    async def go():
        async with Client(demo.opcua) as c:
            ns = await c.get_namespace_index(NS)
            seen, parents, sources = {}, {}, {}
            queue = ["Busbar"]
            while queue:
                here = queue.pop()
                for ref in await browse_forward(c, ua.NodeId(here, ns), page=3):
                    nid = ref.NodeId
                    if nid.NamespaceIndex != ns or str(nid.Identifier).startswith("alarm:"):
                        continue
                    if ref.ReferenceTypeId == ua.NodeId(ua.ObjectIds.HasEventSource):
                        sources.setdefault(here, set()).add(nid.Identifier)
                        continue
                    parents.setdefault(nid.Identifier, set()).add(here)
                    if nid.Identifier not in seen:
                        typedef = ref.TypeDefinition.to_string() if not ref.TypeDefinition.is_null() else None
                        seen[nid.Identifier] = (ref.BrowseName.Name, typedef)
                        queue.append(nid.Identifier)
            want = {k: v for k, v in expected.items() if k != "Busbar"}
            assert set(seen) == set(want), (set(want) - set(seen), set(seen) - set(want))
            for nid, (browse, parent, typedef) in want.items():
                assert parents[nid] == {parent}, nid
                assert seen[nid][0] == browse, nid
                if typedef is not None:
                    assert seen[nid][1] == typedef, (nid, seen[nid][1], typedef)
            # Inverse: the point names its folder.
            parent = await c.get_node(ua.NodeId("tanks/tank3.volume", ns)).get_parent()
            assert (await parent.read_browse_name()).Name == "Tank 3"
            # The demo's alarms make points event sources of their device.
            assert sources, "no HasEventSource reference from any device"
            for device, points in sources.items():
                assert all(p.startswith(device + "/") for p in points), (device, points)

    run(go())


class Collector:
    def __init__(self):
        self.values = []

    def datachange_notification(self, node, val, data):
        self.values.append(val)


def test_subscription_sees_the_ats_transfer(demo):
    demo.wait_good("ats/position")

    async def go():
        async with Client(demo.opcua) as c:
            pos = await node(c, "ats/position")
            handler = Collector()
            sub = await c.create_subscription(100, handler)
            await sub.subscribe_data_change(pos)
            await asyncio.sleep(0.5)
            assert handler.values and handler.values[-1] == 2.0, "initial value: on source I"
            demo.post(demo.control, "/api/devices/ats/events", {"event": "mains_lost"})
            deadline = time.time() + 40
            while time.time() < deadline and 3.0 not in handler.values:
                await asyncio.sleep(0.2)
            assert 3.0 in handler.values, f"transfer to source II notified: {handler.values}"
            await sub.delete()

    run(go())


def test_silent_device_is_bad_communication_then_good(demo):
    demo.wait_good("ev2/state")

    async def go():
        async with Client(demo.opcua) as c:
            state = await node(c, "ev2/state")
            demo.post(demo.control, "/api/devices/ev2/faults", {"fault": "silent"})
            deadline = time.time() + 10
            code = None
            while time.time() < deadline:
                code = (await state.read_data_value(raise_on_bad_status=False)).StatusCode.value
                if code == ua.StatusCodes.BadCommunicationError:
                    break
                await asyncio.sleep(0.2)
            assert code == ua.StatusCodes.BadCommunicationError
            req = urllib.request.Request(demo.control + "/api/devices/ev2/faults", method="DELETE")
            urllib.request.urlopen(req, timeout=5)
            deadline = time.time() + 15
            while time.time() < deadline:
                if (await state.read_data_value(raise_on_bad_status=False)).StatusCode.is_good():
                    break
                await asyncio.sleep(0.3)
            assert (await state.read_data_value()).StatusCode.is_good()

    run(go())


def test_write_reaches_the_simulated_charger(demo):
    demo.wait_good("ev1/current_limit")

    async def go():
        async with Client(demo.opcua) as c:
            limit = await node(c, "ev1/current_limit")
            await limit.write_value(ua.DataValue(ua.Variant(14.0, ua.VariantType.Double)))
            truth = demo.get(demo.control, "/api/devices/ev1")["truth"]["current_limit"]["value"]
            assert truth == 14.0
            with pytest.raises(ua.UaStatusCodeError):
                await limit.write_value(ua.DataValue(ua.Variant(99.0, ua.VariantType.Double)))
            ro = await node(c, "main_meter/v1")
            with pytest.raises(ua.UaStatusCodeError):
                await ro.write_value(ua.DataValue(ua.Variant(1.0, ua.VariantType.Double)))

    run(go())


def test_secure_session_with_a_user_and_refusal_of_a_wrong_password(demo, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.der"
    uri = "urn:busbar:interop:client"

    async def connect(password):
        await setup_self_signed_certificate(key, cert, uri, "localhost",
                                            [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "busbar interop"})
        c = Client(demo.opcua)
        c.application_uri = uri
        c.set_user("operator")
        c.set_password(password)
        await c.set_security(SecurityPolicyBasic256Sha256, str(cert), str(key),
                             mode=ua.MessageSecurityMode.SignAndEncrypt)
        await c.connect()
        try:
            v = await (await node(c, "main_meter/frequency")).read_value()
            assert 49.5 <= v <= 50.5
        finally:
            await c.disconnect()

    run(connect("demo-operator"))
    with pytest.raises(Exception):
        run(connect("wrong-password"))


def test_methods_command_devices_and_report_their_outcome(demo):
    demo.wait_good("ats/position")

    async def go():
        async with Client(demo.opcua) as c:
            ns = await c.get_namespace_index(NS)
            ats = await node(c, "ats")
            await ats.call_method(f"{ns}:TransferTo0")
            deadline = time.time() + 5
            while time.time() < deadline and demo.get(demo.control, "/api/devices/ats")["truth"]["position"]["value"] != 1:
                await asyncio.sleep(0.2)
            assert demo.get(demo.control, "/api/devices/ats")["truth"]["position"]["value"] == 1
            ev1 = await node(c, "ev1")
            await ev1.call_method(f"{ns}:SetCurrentLimit", ua.Variant(10.0, ua.VariantType.Double))
            assert demo.get(demo.control, "/api/devices/ev1")["truth"]["current_limit"]["value"] == 10.0
            with pytest.raises(ua.uaerrors.BadOutOfRange):
                await ev1.call_method(f"{ns}:SetCurrentLimit", ua.Variant(99.0, ua.VariantType.Double))
            # Start with no vehicle connected: the charger refuses (Modbus exception 04).
            ev3 = await node(c, "ev3")
            with pytest.raises(ua.uaerrors.BadInvalidState):
                await ev3.call_method(f"{ns}:Start")

    run(go())


def test_a_viewer_reads_but_may_not_write_or_call(demo):
    demo.wait_good("ev1/current_limit")

    async def go():
        c = Client(demo.opcua)
        c.set_user("viewer")
        c.set_password("demo-viewer")
        await c.connect()
        try:
            ns = await c.get_namespace_index(NS)
            limit = await node(c, "ev1/current_limit")
            assert (await limit.read_value()) > 0
            with pytest.raises(ua.UaStatusCodeError):
                await limit.write_value(ua.DataValue(ua.Variant(12.0, ua.VariantType.Double)))
            with pytest.raises(ua.UaStatusCodeError):
                await (await node(c, "ats")).call_method(f"{ns}:TransferTo0")
        finally:
            await c.disconnect()
        assert demo.get(demo.control, "/api/devices/ats")["truth"]["position"]["value"] == 2, "nothing moved"

    run(go())


def test_history_read_raw_returns_a_trend(demo):
    demo.wait_good("main_meter/v1")
    time.sleep(3)  # a few polls at 1 s

    async def go():
        async with Client(demo.opcua) as c:
            v1 = await node(c, "main_meter/v1")
            end = datetime.datetime.now(datetime.timezone.utc)
            start = end - datetime.timedelta(minutes=5)
            values = await v1.read_raw_history(start, end)
            assert len(values) >= 3, values
            times = [v.SourceTimestamp for v in values]
            assert times == sorted(times), "oldest first"
            assert all(207 <= v.Value.Value <= 253 for v in values)
            limited = await v1.read_raw_history(start, end, numvalues=2)
            assert len(limited) == 2

    run(go())


def test_absolute_deadband_filters_small_changes(demo):
    demo.wait_good("main_meter/v1")

    async def go():
        async with Client(demo.opcua) as c:
            v1 = await node(c, "main_meter/v1")
            every, filtered = Collector(), Collector()
            sub_all = await c.create_subscription(100, every)
            await sub_all.subscribe_data_change(v1)
            sub_db = await c.create_subscription(100, filtered)
            # Absolute deadband of 100 V: the +-1 % noise of V1 never passes it.
            await sub_db.deadband_monitor(v1, deadband_val=100.0, deadbandtype=1)
            await asyncio.sleep(4.5)
            assert len(every.values) >= 3, every.values
            assert len(filtered.values) == 1, f"only the initial value passes: {filtered.values}"

    run(go())


def test_enums_publish_their_labels(demo):
    demo.wait_good("ats/mode")

    async def go():
        async with Client(demo.opcua) as c:
            mode = await node(c, "ats/mode")
            assert await mode.read_type_definition() == ua.NodeId(ua.ObjectIds.MultiStateValueDiscreteType)
            values = await (await mode.get_child("0:EnumValues")).read_value()
            labels = {v.Value: v.DisplayName.Text for v in values}
            assert labels == {0: "manual", 16: "auto", 32: "remote", 64: "inhibit"}
            assert labels[int(await mode.read_value())] == "auto"

    run(go())


def test_untrusted_client_certificates_are_refused_until_trusted(tmp_path):
    """Without auto-trust, an unknown client certificate is refused and lands in pki/rejected;
    moved to pki/trusted by an administrator, it is accepted."""
    import re
    import shutil
    import socket
    import subprocess

    from conftest import ROOT, find_binary, stop_process

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "bridge.yaml"
    config.write_text(f"""site: {{ name: Trust, id: trust }}
connections: []
devices: []
servers:
  opcua:
    listen: 127.0.0.1:{port}
    pki_dir: pki
    users: [{{ name: operator, password: operator-pass, role: operator }}]
""")
    proc = subprocess.Popen([find_binary("busbar"), "run", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = None
        deadline = time.time() + 30
        while time.time() < deadline and url is None:
            line = proc.stdout.readline()
            if m := re.search(r"opc ua server +: (opc\.tcp://[0-9.:]+/)", line):
                url = m.group(1)
        assert url, "the bridge did not start its OPC UA server"
        key, cert = tmp_path / "key.pem", tmp_path / "cert.der"
        uri = "urn:busbar:interop:untrusted"

        async def connect():
            await setup_self_signed_certificate(key, cert, uri, "localhost",
                                                [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "untrusted"})
            c = Client(url)
            c.application_uri = uri
            c.set_user("operator")
            c.set_password("operator-pass")
            await c.set_security(SecurityPolicyBasic256Sha256, str(cert), str(key),
                                 mode=ua.MessageSecurityMode.SignAndEncrypt)
            await c.connect()
            await c.disconnect()

        with pytest.raises(Exception):
            run(connect())
        rejected = list((tmp_path / "pki" / "rejected").glob("*"))
        assert rejected, "the refused certificate is kept in pki/rejected"
        trusted = tmp_path / "pki" / "trusted"
        trusted.mkdir(parents=True, exist_ok=True)
        for f in rejected:
            shutil.move(str(f), trusted / f.name)
        run(connect())
    finally:
        stop_process(proc)
