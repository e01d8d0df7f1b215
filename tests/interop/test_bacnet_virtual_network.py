"""One BACnet device per field device, on a virtual network behind the bridge as a router,
against bacpypes3 and @bacnet-js/client: a global Who-Is finds the router's own device and one
device per field device, each answering from the virtual network (SNET 1001 and its MAC);
Who-Is-Router-To-Network is answered with I-Am-Router-To-Network; reads are routed by network
and MAC; a device's Object_List is read whole in segments; a breaker trip is notified by the
breaker's own device; and `busbar export ede` writes this layout (device rows with their network
and MAC address), which is where the test takes the expected instances from."""

import asyncio
import csv
import subprocess

from bacpypes3.apdu import SimpleAckPDU
from bacpypes3.app import Application
from bacpypes3.argparse import SimpleArgumentParser
from bacpypes3.basetypes import DaysOfWeek, Destination, DeviceAddress, EventTransitionBits, Recipient
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier, OctetString, Time

from conftest import ROOT, find_binary
from test_alarms_journal import Bridge, free_port, sim  # noqa: F401  (sim is a fixture)
from test_bacnet_events import free_udp_port
from test_bacnet_js import Peer
from test_bridge_bacnet import started

ROUTER = 777
NETWORK = 1001


def write_config(tmp_path, sim, bacnet_port):
    config = tmp_path / "bridge.yaml"
    config.write_text(f"""site: {{ name: Routed, id: routed }}
connections: [{{ name: gw, tcp: {{ host: 127.0.0.1, port: {sim.port} }} }}]
devices:
  - {{ name: ats, profile: socomec-atys-pm, connection: gw, unit_id: 1, poll_interval_ms: 200 }}
  - {{ name: main_meter, profile: socomec-diris-a40, connection: gw, unit_id: 2, poll_interval_ms: 200 }}
  - {{ name: shop_breaker, profile: legrand-dpx3, connection: gw, unit_id: 14, poll_interval_ms: 200 }}
servers:
  http: {{ listen: "127.0.0.1:{free_port()}" }}
  bacnet: {{ listen: "127.0.0.1:{bacnet_port}", device_instance: {ROUTER}, virtual_network: {NETWORK} }}
alarms:
  journal: {tmp_path / "alarms.db"}
""")
    return config


def layout(tmp_path, config):
    """Devices of the EDE export: name -> (instance, network, mac), and objects per device."""
    out = tmp_path / "ede"
    subprocess.run([find_binary("busbar"), "export", "ede", "--config", str(config), "--out", str(out)], cwd=ROOT,
                   check=True, capture_output=True)
    rows = [r for r in csv.reader((out / "routed_EDE.csv").read_text().splitlines(), delimiter=";")
            if r and not r[0].startswith("#") and len(r) > 10]
    devices, objects = {}, {}
    for r in rows:
        if r[3] == "8":
            address = r[15].split()
            net, mac = (int(address[1]), bytes.fromhex(address[3])) if address else (None, None)
            devices[r[0]] = (int(r[1]), net, mac)
        objects.setdefault(int(r[1]), []).append(r[2])
    return devices, objects


def routed(net, mac):
    return Address(f"{net}:0x{mac.hex()}")


def test_each_field_device_is_a_device_on_the_virtual_network(sim, tmp_path):
    port = free_udp_port()
    config = write_config(tmp_path, sim, port)
    devices, objects = layout(tmp_path, config)
    assert set(devices) == {"Routed", "ats", "main_meter", "shop_breaker"}
    assert devices["Routed"] == (ROUTER, None, None), "the router's own device, on the bridge's address"
    assert all(net == NETWORK and len(mac) == 2 for name, (_, net, mac) in devices.items() if name != "Routed")
    assert objects[ROUTER] == ["Routed"], "the router device holds no points"
    breaker_instance, _, breaker_mac = devices["shop_breaker"]
    assert "shop_breaker.state" in objects[breaker_instance]
    assert "alarms.major" in objects[breaker_instance], "each device has its Notification Classes"
    bridge = Bridge(config)

    async def go():
        own = free_udp_port()
        args = SimpleArgumentParser().parse_args(["--address", f"127.0.0.1/8:{own}", "--instance", str(own),
                                                  "--foreign", f"127.0.0.1:{port}", "--ttl", "60"])
        app = await started(Application.from_args(args))
        notes = asyncio.Queue()

        async def confirmed(apdu):
            await notes.put(apdu)
            await app.response(SimpleAckPDU(context=apdu))

        app.do_ConfirmedEventNotificationRequest = confirmed
        try:
            await asyncio.sleep(1.0)
            # Who-Is-Router-To-Network: the bridge routes to the virtual network.
            routers = await app.nse.who_is_router_to_network(network=NETWORK)
            assert routers, "an I-Am-Router-To-Network"
            assert any(NETWORK in npdu.iartnNetworkList for _, npdu in routers)

            # A global Who-Is: the router's device and one device per field device.
            i_ams = await app.who_is(timeout=3)
            found = {i.iAmDeviceIdentifier[1]: i.pduSource for i in i_ams}
            assert set(found) == {d[0] for d in devices.values()}
            for name, (instance, net, mac) in devices.items():
                if net is None:
                    assert found[instance].addrNet is None, "the router device is local"
                else:
                    assert (found[instance].addrNet, bytes(found[instance].addrAddr)) == (net, mac), name

            # Reads routed by network and MAC address.
            at = routed(NETWORK, breaker_mac)
            dev = ObjectIdentifier(f"device,{breaker_instance}")
            assert str(await app.read_property(at, dev, "objectName")) == "shop_breaker"
            assert "Legrand" in str(await app.read_property(at, dev, "description"))
            # The meter's Object_List whole, in segments of a 128-octet APDU.
            meter_instance, _, meter_mac = devices["main_meter"]
            app.device_object.maxApduLengthAccepted = 128
            app.device_object.maxSegmentsAccepted = 64
            listed = await app.read_property(routed(NETWORK, meter_mac), ObjectIdentifier(f"device,{meter_instance}"),
                                             "objectList")
            assert len(listed) == len(objects[meter_instance]) > 30
            app.device_object.maxApduLengthAccepted = 1476

            # The breaker's own device tells its trip to the recipient it was given.
            mac = bytes([127, 0, 0, 1]) + own.to_bytes(2, "big")
            recipient = Recipient(address=DeviceAddress(networkNumber=0, macAddress=OctetString(mac)))
            destination = Destination(validDays=DaysOfWeek([1] * 7), fromTime=Time("00:00:00"),
                                      toTime=Time("23:59:59.99"), recipient=recipient, processIdentifier=5,
                                      issueConfirmedNotifications=True, transitions=EventTransitionBits([1, 1, 1]))
            await app.write_property(at, ObjectIdentifier("notification-class,4"), "recipientList", [destination])
            sim.api("POST", "/api/devices/shop_breaker/events", {"event": "breaker_trip", "cause": "overload"})
            n = await asyncio.wait_for(notes.get(), 15)
            assert n.initiatingDeviceIdentifier == dev, "from the breaker's own device"
            assert (n.pduSource.addrNet, bytes(n.pduSource.addrAddr)) == (NETWORK, breaker_mac)
            assert str(n.toState) == "offnormal" and n.notificationClass == 4 and n.processIdentifier == 5
            state = n.eventObjectIdentifier
            assert str(await app.read_property(at, state, "objectName")) == "shop_breaker.state"
            assert str(await app.read_property(at, state, "eventState")) == "offnormal"
        finally:
            app.close()

    try:
        asyncio.run(go())
    finally:
        bridge.stop()


def test_a_second_stack_discovers_and_reads_through_the_router(sim, tmp_path):
    """@bacnet-js/client: a global Who-Is unicast to the router, I-Ams from the virtual network,
    routed reads, a routed Object_List in segments, and the breaker device's EventNotification
    (its Recipient_List written by a bacpypes3 foreign device)."""
    port = free_udp_port()
    config = write_config(tmp_path, sim, port)
    devices, objects = layout(tmp_path, config)
    bridge = Bridge(config)
    peer = Peer()
    to = f"127.0.0.1:{port}"
    try:
        peer.ok("whoIs", to={"address": to, "net": 0xFFFF})
        seen = {}
        while len(seen) < len(devices):
            m = peer.next_event("iAm", timeout=5)
            seen[m["payload"]["deviceId"]] = m["sender"]
        for name, (instance, net, mac) in devices.items():
            sender = seen[instance]
            assert sender["address"] == to
            if net is None:
                assert not sender.get("net"), "the router device is local"
            else:
                assert (sender["net"], bytes(sender["adr"])) == (net, mac), name

        meter, _, meter_mac = devices["main_meter"]
        where = {"address": to, "net": NETWORK, "adr": list(meter_mac)}
        name = peer.ok("read", to=where, type=8, instance=meter, property=77)
        assert name[0]["value"] == "main_meter"
        whole = peer.call("read", to=where, type=8, instance=meter, property=76, maxApdu=1)  # 128 octets
        assert whole["ok"], whole
        assert len(whole["result"]) == len(objects[meter])

        breaker, _, breaker_mac = devices["shop_breaker"]

        async def register():
            own = free_udp_port()
            args = SimpleArgumentParser().parse_args(["--address", f"127.0.0.1/8:{own}", "--instance", str(own),
                                                      "--foreign", to, "--ttl", "60"])
            app = await started(Application.from_args(args))
            try:
                await app.nse.who_is_router_to_network(network=NETWORK)
                mac = bytes([127, 0, 0, 1]) + peer.port.to_bytes(2, "big")
                recipient = Recipient(address=DeviceAddress(networkNumber=0, macAddress=OctetString(mac)))
                destination = Destination(validDays=DaysOfWeek([1] * 7), fromTime=Time("00:00:00"),
                                          toTime=Time("23:59:59.99"), recipient=recipient, processIdentifier=8,
                                          issueConfirmedNotifications=False,
                                          transitions=EventTransitionBits([1, 1, 1]))
                await app.write_property(routed(NETWORK, breaker_mac), ObjectIdentifier("notification-class,4"),
                                         "recipientList", [destination])
            finally:
                app.close()

        asyncio.run(register())
        sim.api("POST", "/api/devices/shop_breaker/events", {"event": "breaker_trip", "cause": "overload"})
        note = peer.next_event("eventNotify")
        p = note["payload"]
        assert p["initiatingObjectId"] == {"type": 8, "instance": breaker}
        assert (note["sender"]["net"], bytes(note["sender"]["adr"])) == (NETWORK, breaker_mac)
        assert (p["toState"], p["processId"], p["notificationClass"]) == (2, 8, 4)
        assert not note["confirmed"]
    finally:
        peer.stop()
        bridge.stop()
