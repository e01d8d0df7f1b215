// A BACnet peer on @bacnet-js/client (a TypeScript stack nobody here wrote), driven by the
// interop tests: one JSON command per line on stdin, one JSON answer per line on stdout
// ({"id", "ok", "result"} or {"id", "ok": false, "error"}), and what arrives unasked
// ({"event": "iAm" | "eventNotify", ...}). Usage: node peer.js <own port>
'use strict';

const readline = require('node:readline');
const Bacnet = require('@bacnet-js/client').default;

const port = Number(process.argv[2] || 47900);
const client = new Bacnet({ port, interface: '127.0.0.1', broadcastAddress: '127.255.255.255', apduTimeout: 6000 });

// A receiver: "ip:port", or { address, net, adr } for a device behind a router.
function at(to) {
  return typeof to === 'string' ? { address: to } : to;
}

// Where a message came from: address, and network and MAC when a router relayed it.
function origin(sender) {
  return { address: sender.address, net: sender.net, adr: sender.adr };
}

function out(message) {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

client.on('error', (e) => out({ event: 'error', error: String(e) }));
client.on('iAm', (m) => out({ event: 'iAm', sender: origin(m.header.sender), payload: m.payload }));
client.on('eventNotify', (m) => {
  out({ event: 'eventNotify', sender: origin(m.header.sender), confirmed: m.invokeId !== undefined, payload: m.payload });
  if (m.invokeId !== undefined) {
    client.simpleAckResponse(m.header.sender, m.service, m.invokeId);
  }
});
client.on('listening', () => out({ event: 'ready', port }));

const ops = {
  whoIs: ({ to, low, high }) => {
    client.whoIs(at(to), { lowLimit: low, highLimit: high });
    return null;
  },
  read: async ({ to, type, instance, property, index, maxApdu }) => {
    const options = {};
    if (index !== undefined) options.arrayIndex = index;
    if (maxApdu !== undefined) options.maxApdu = maxApdu;
    const r = await client.readProperty(at(to), { type, instance }, property, options);
    return r.values;
  },
  readMultiple: async ({ to, specs }) => {
    const r = await client.readPropertyMultiple(at(to), specs);
    return r.values;
  },
  eventInformation: async ({ to }) => client.getEventInformation(at(to)),
  communicationControl: async ({ to, minutes, state, password }) => {
    await client.deviceCommunicationControl(at(to), minutes, state, password === undefined ? {} : { password });
    return null;
  },
  reinitialize: async ({ to, state, password }) => {
    await client.reinitializeDevice(at(to), state, password === undefined ? {} : { password });
    return null;
  },
  timeSync: ({ to, utc, iso }) => {
    const when = new Date(iso);
    if (utc) {
      client.timeSyncUTC(at(to), when);
    } else {
      client.timeSync(at(to), when);
    }
    return null;
  },
};

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  let command;
  try {
    command = JSON.parse(line);
  } catch (e) {
    out({ ok: false, error: `not JSON: ${line}` });
    return;
  }
  const op = ops[command.op];
  if (!op) {
    out({ id: command.id, ok: false, error: `unknown op ${command.op}` });
    return;
  }
  try {
    const result = await op(command);
    out({ id: command.id, ok: true, result });
  } catch (e) {
    out({ id: command.id, ok: false, error: String(e && e.message ? e.message : e) });
  }
});
rl.on('close', () => {
  client.close();
  process.exit(0);
});
