// node-opcua-client against the bridge's Alarms & Conditions, run by test_opcua_js.py.
// Usage: node alarms.js <endpoint url> <condition name>. Prints one JSON object per line:
// {"ready": true} once subscribed (the test then trips the breaker), then a line per step.
// Every step uses node-opcua's own helpers (constructEventFilter, ofType,
// acknowledgeCondition, addCommentCondition, callConditionRefresh).
"use strict";
const {
  OPCUAClient,
  MessageSecurityMode,
  SecurityPolicy,
  AttributeIds,
  TimestampsToReturn,
  UserTokenType,
  constructEventFilter,
  callConditionRefresh,
  resolveNodeId,
} = require("node-opcua-client");

const [url, conditionName] = process.argv.slice(2);
const FIELDS = [
  "EventId",
  "EventType",
  "SourceName",
  "Message",
  "Severity",
  "ConditionName",
  "Retain",
  "ActiveState.Id",
  "AckedState.Id",
  "EnabledState.Id",
  "Comment",
  "ClientUserId",
  "ConditionId",
];

function say(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function toJson(values) {
  const out = {};
  FIELDS.forEach((name, i) => {
    const v = values[i];
    if (!v || v.value === null || v.value === undefined) {
      out[name] = null;
    } else if (Buffer.isBuffer(v.value)) {
      out[name] = v.value.toString("hex");
    } else if (v.value.text !== undefined) {
      out[name] = v.value.text;
    } else {
      out[name] = v.value.toString();
    }
  });
  return out;
}

async function session(client, userName, password) {
  return client.createSession({ type: UserTokenType.UserName, userName, password });
}

async function main() {
  const client = OPCUAClient.create({
    securityMode: MessageSecurityMode.None,
    securityPolicy: SecurityPolicy.None,
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 2, initialDelay: 200 },
  });
  await client.connect(url);
  const alice = await session(client, "alice", "alice-secret-1");
  const victor = await session(client, "victor", "victor-secret-1");
  const sub = await alice.createSubscription2({
    requestedPublishingInterval: 50,
    requestedMaxKeepAliveCount: 20,
    requestedLifetimeCount: 600,
    publishingEnabled: true,
  });
  // No where clause: RefreshStart and RefreshEnd are not alarms, and async-opcua puts every
  // event through the item's where clause (test_opcua_alarms.py covers OfType, >= and And).
  const filter = constructEventFilter(FIELDS);
  // constructEventFilter asks for the ConditionId with a null BrowsePath; async-opcua 0.19
  // drops a select clause without one (docs/opcua.md), so give it the empty path Part 9 shows.
  for (const clause of filter.selectClauses) {
    if (clause.attributeId === AttributeIds.NodeId) {
      clause.browsePath = [];
    }
  }
  const item = await sub.monitor(
    { nodeId: resolveNodeId("Server"), attributeId: AttributeIds.EventNotifier },
    { samplingInterval: 0, discardOldest: true, queueSize: 1000, filter },
    TimestampsToReturn.Both,
  );
  const events = [];
  let wake = null;
  item.on("changed", (values) => {
    events.push(toJson(values));
    if (wake) wake();
  });
  const next = async (match, what) => {
    const deadline = Date.now() + 15000;
    for (;;) {
      const i = events.findIndex(match);
      if (i >= 0) return events.splice(0, i + 1)[i];
      if (Date.now() > deadline) throw new Error(`no event: ${what}`);
      await new Promise((r) => {
        wake = r;
        setTimeout(r, 200);
      });
    }
  };
  say({ ready: true });

  const raised = await next((e) => e.ConditionName === conditionName && e["ActiveState.Id"] === "true", "raised");
  say({ step: "raised", event: raised });
  const conditionId = resolveNodeId(raised.ConditionId);
  const eventId = Buffer.from(raised.EventId, "hex");

  const refused = await victor.acknowledgeCondition(conditionId, eventId, "the viewer tries");
  say({ step: "viewer_ack", status: refused.name });

  const ack = await alice.acknowledgeCondition(conditionId, eventId, "acknowledged from node-opcua");
  say({ step: "operator_ack", status: ack.name });
  const acked = await next((e) => e.ConditionName === conditionName && e["AckedState.Id"] === "true", "acked");
  say({ step: "acked", event: acked });

  const commented = await alice.addCommentCondition(conditionId, Buffer.from(acked.EventId, "hex"),
    "a comment from node-opcua");
  say({ step: "comment", status: commented.name });
  const noted = await next((e) => e.ConditionName === conditionName && e.Comment === "a comment from node-opcua",
    "comment");
  say({ step: "commented", event: noted });

  // callConditionRefresh calls ConditionRefresh on the ConditionType with our subscription.
  await callConditionRefresh(alice, sub.subscriptionId);
  const start = await next((e) => e.EventType === "ns=0;i=2787", "RefreshStart");
  const refreshed = [];
  for (;;) {
    const e = await next(() => true, "RefreshEnd");
    if (e.EventType === "ns=0;i=2788") break;
    refreshed.push(e);
  }
  say({ step: "refresh", start: start.EventType, conditions: refreshed });

  await sub.terminate();
  await victor.close();
  await alice.close();
  await client.disconnect();
}

main().then(
  () => process.exit(0),
  (err) => {
    say({ error: String(err && err.stack ? err.stack : err) });
    process.exit(1);
  },
);
