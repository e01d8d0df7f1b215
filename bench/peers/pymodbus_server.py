"""Reference Modbus-TCP server for the benchmark: pymodbus serving the same register block the
benchmark reads from busbar-sim (unit 2, 38 holding registers at 50512, the DIRIS measurement
block). Usage: pymodbus_server.py PORT"""

import asyncio
import logging
import sys

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import StartAsyncTcpServer

logging.getLogger("pymodbus").setLevel(logging.ERROR)


def main():
    port = int(sys.argv[1])
    # pymodbus data blocks are 1-based: block address 50513 serves protocol address 50512.
    block = ModbusSequentialDataBlock(50513, list(range(38)))
    context = ModbusServerContext(devices={2: ModbusDeviceContext(hr=block)}, single=False)
    print(f"pymodbus listening on 127.0.0.1:{port}", flush=True)
    asyncio.run(StartAsyncTcpServer(context, address=("127.0.0.1", port)))


if __name__ == "__main__":
    main()
