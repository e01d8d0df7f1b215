"""`busbar export nodeset` imported by another OPC UA stack (an asyncua server): the nodes, their
types and properties arrive as the bridge serves them."""

import asyncio
import subprocess

from asyncua import Server, ua

from conftest import ROOT, find_binary


def test_asyncua_server_imports_the_exported_nodeset(tmp_path):
    out = subprocess.run([find_binary("busbar"), "export", "nodeset"], cwd=ROOT, capture_output=True, text=True, check=True)
    path = tmp_path / "busbar.xml"
    path.write_text(out.stdout)

    async def go():
        server = Server()
        await server.init()
        await server.import_xml(str(path))
        idx = await server.get_namespace_index("urn:busbar:site")
        v1 = server.get_node(ua.NodeId("main_meter/v1", idx))
        assert (await v1.read_browse_name()).Name == "v1"
        assert await v1.read_type_definition() == ua.NodeId(ua.ObjectIds.AnalogItemType)
        eu = await (await v1.get_child("0:EngineeringUnits")).read_value()
        assert eu.DisplayName.Text == "V" and eu.UnitId == (ord("V") << 16) | (ord("L") << 8) | ord("T")
        rng = await (await v1.get_child("0:EURange")).read_value()
        assert (rng.Low, rng.High) == (0.0, 460.0)
        tank3 = server.get_node(ua.NodeId("tanks/tank3.volume", idx))
        parent = await tank3.get_parent()
        assert (await parent.read_browse_name()).Name == "Tank 3"
        mode = await (await server.get_node(ua.NodeId("ats/mode", idx)).get_child("0:EnumValues")).read_value()
        assert {v.Value: v.DisplayName.Text for v in mode}[16] == "auto"
        method = server.get_node(ua.NodeId("ev1#SetCurrentLimit", idx))
        assert await method.read_node_class() == ua.NodeClass.Method
        site = await server.nodes.objects.get_child([f"{idx}:Busbar", f"{idx}:station-nord"])
        assert len(await site.get_children()) == 17, "every device"

    asyncio.run(go())
