"""Reference BACnet/IP server for the benchmark: bacpypes3 serving COUNT Analog Input objects
(instances 1..COUNT, COV_Increment 0) and changing RATE of them per second to the Unix time
modulo 1000 s, as `busbar bench-bacnet` does. Usage: bacnet_server.py PORT COUNT RATE"""

import asyncio
import sys
import time

from bacpypes3.argparse import SimpleArgumentParser
from bacpypes3.app import Application
from bacpypes3.local.analog import AnalogInputObject


async def main():
    port, count, rate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    args = SimpleArgumentParser().parse_args(["--address", f"127.0.0.1/8:{port}", "--instance", "100"])
    app = Application.from_args(args)
    objects = []
    for i in range(1, count + 1):
        obj = AnalogInputObject(
            objectIdentifier=("analog-input", i),
            objectName=f"p{i}",
            presentValue=0.0,
            statusFlags=[0, 0, 0, 0],
            eventState="normal",
            outOfService=False,
            units="liters",
            covIncrement=0.0,
        )
        app.add_object(obj)
        objects.append(obj)
    print("ready", flush=True)
    k = 0
    step = max(1, rate // 10)
    loop = asyncio.get_running_loop()
    while True:
        t = loop.time()
        value = (time.time() % 1000.0)
        for _ in range(step):
            objects[k % count].presentValue = value
            k += 1
        await asyncio.sleep(max(0.0, 0.1 - (loop.time() - t)))


asyncio.run(main())
