// send.mjs sends events to a Switchyard (or Segment) Tracking API through the
// real @segment/analytics-node SDK, so the end-to-end tests exercise exactly
// what users run.
//
// Usage: node send.mjs <input.json>
//
// The input file holds:
//   {"host": "http://127.0.0.1:P", "writeKey": "...",
//    "events": [{"type": "track", "userId": "...", "event": "...",
//                "properties": {...}, "messageId": "..."}, ...]}
// Supported types: track, identify, page, screen, group, alias. Every field of
// an event except "type" is passed to the SDK call unchanged (messageId
// included), so the caller chooses the messageIds it asserts on.
//
// Exit status: 0 when every event was delivered (the SDK's callback reported
// no error and no 'error' event was emitted), 1 otherwise, 2 on bad usage.
// A JSON summary {"sent": n, "delivered": n, "errors": [...]} goes to stdout;
// HTTP requests and responses are logged to stderr for debugging.
import { readFile } from 'node:fs/promises';
import { Analytics } from '@segment/analytics-node';

const path = process.argv[2];
if (!path) {
  console.error('usage: node send.mjs <input.json>');
  process.exit(2);
}

const input = JSON.parse(await readFile(path, 'utf8'));
if (!input.host || !input.writeKey || !Array.isArray(input.events)) {
  console.error('input needs "host", "writeKey" and an "events" array');
  process.exit(2);
}

const analytics = new Analytics({
  writeKey: input.writeKey,
  host: input.host,
  flushAt: 10,
  maxRetries: 5,
});

const errors = [];
let delivered = 0;

analytics.on('error', (err) => {
  const messageId = err?.ctx?.event?.messageId;
  errors.push({ code: err?.code, reason: String(err?.reason), messageId });
});
analytics.on('http_request', (req) => {
  console.error(`sdk: ${req.method} ${req.url}`);
});
analytics.on('http_response', (res) => {
  console.error(`sdk: -> ${res.status} ${res.statusText}`);
});

const calls = {
  track: (p, cb) => analytics.track(p, cb),
  identify: (p, cb) => analytics.identify(p, cb),
  page: (p, cb) => analytics.page(p, cb),
  screen: (p, cb) => analytics.screen(p, cb),
  group: (p, cb) => analytics.group(p, cb),
  alias: (p, cb) => analytics.alias(p, cb),
};

for (const ev of input.events) {
  const { type, ...params } = ev;
  const call = calls[type];
  if (!call) {
    console.error(`unsupported event type ${JSON.stringify(type)}`);
    process.exit(2);
  }
  // The callback runs once the batch holding this event was accepted or
  // finally failed; errors also arrive through the 'error' event.
  call(params, (err) => {
    if (!err) delivered++;
  });
}

await analytics.closeAndFlush({ timeout: 30000 });

const summary = { sent: input.events.length, delivered, errors };
console.log(JSON.stringify(summary));
if (errors.length > 0 || delivered !== input.events.length) {
  console.error(`send.mjs: ${delivered}/${input.events.length} delivered, ${errors.length} errors`);
  process.exit(1);
}
