"""OPC UA load client for the benchmark: subscribes to every variable of a namespace (or a list
of string node ids) and measures notifications per second and the latency from the value's
SourceTimestamp to its arrival. Prints one JSON line.

Usage: opcua_client.py URL NAMESPACE_URI IDS_FILE SECONDS
  IDS_FILE holds one string node id per line (in that namespace).
"""

import asyncio
import datetime
import json
import sys
import time

from asyncua import Client, ua


class Handler:
    def __init__(self):
        self.count = 0
        self.latencies = []
        self.measuring = False

    def datachange_notification(self, node, val, data):
        if not self.measuring:
            return
        self.count += 1
        src = data.monitored_item.Value.SourceTimestamp
        if src is not None:
            now = datetime.datetime.now(datetime.timezone.utc)
            if src.tzinfo is None:
                src = src.replace(tzinfo=datetime.timezone.utc)
            self.latencies.append((now - src).total_seconds() * 1000.0)


async def main():
    url, ns_uri, ids_file, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    ids = [line.strip() for line in open(ids_file) if line.strip()]
    count = len(ids)
    async with Client(url, timeout=60) as c:
        ns = await c.get_namespace_index(ns_uri)
        handler = Handler()
        sub = await c.create_subscription(25, handler)
        nodes = [c.get_node(ua.NodeId(i, ns)) for i in ids]
        t0 = time.time()
        for i in range(0, count, 500):
            await sub.subscribe_data_change(nodes[i:i + 500], sampling_interval=0, queuesize=1)
        setup = time.time() - t0
        await asyncio.sleep(2)
        handler.measuring = True
        t1 = time.time()
        await asyncio.sleep(seconds)
        handler.measuring = False
        elapsed = time.time() - t1
        lat = sorted(handler.latencies)
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
        print(json.dumps({"items": count, "setup_s": setup, "notifications_per_s": handler.count / elapsed,
                          "p50_ms": pick(0.5), "p99_ms": pick(0.99)}), flush=True)


asyncio.run(main())
