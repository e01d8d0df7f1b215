"""Reference OPC UA server for the benchmark: asyncua publishing COUNT Double variables
(ns=<urn:bench:peer>;s=p<i>) and changing RATE of them per second with the SourceTimestamp of
the change. Usage: opcua_server.py PORT COUNT RATE IDS_FILE (the ids are written there)"""

import asyncio
import datetime
import logging
import sys

from asyncua import Server, ua

logging.getLogger("asyncua").setLevel(logging.ERROR)


async def main():
    port, count, rate, ids_file = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace("urn:bench:peer")
    folder = await server.nodes.objects.add_folder(ns, "bench")
    nodes = []
    for i in range(count):
        nodes.append(await folder.add_variable(ua.NodeId(f"p{i}", ns), f"p{i}", 0.0))
    with open(ids_file, "w") as f:
        f.write("\n".join(f"p{i}" for i in range(count)))
    print("ready", flush=True)
    async with server:
        k = 0
        step = max(1, rate // 10)
        while True:
            t = asyncio.get_running_loop().time()
            now = datetime.datetime.now(datetime.timezone.utc)
            for _ in range(step):
                dv = ua.DataValue(ua.Variant(float(k), ua.VariantType.Double), SourceTimestamp=now, ServerTimestamp=now)
                await server.write_attribute_value(nodes[k % count].nodeid, dv)
                k += 1
            await asyncio.sleep(max(0.0, 0.1 - (asyncio.get_running_loop().time() - t)))


asyncio.run(main())
