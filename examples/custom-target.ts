/**
 * A target plugin of your own: alerts and deploy notices posted to a Slack-style incoming webhook
 * (`POST {channel, text}`), then the delivery log and dead letters from code. A mistyped channel is refused
 * for good (404 `channel_not_found`): that delivery is dead; after the fix it is recovered and delivered.
 *
 *   SLACK_WEBHOOK_URL=http://127.0.0.1:8080/slack npx tsx custom-target.ts
 */
// #region plugin
import { createEvent, createRelay, openDatabase, scheduleBackoff } from 'raqeem-relay';
import type { OutboundResponse, RelayEvent, TargetPlugin, Verdict } from 'raqeem-relay';

interface ChatOptions {
  webhookUrl: string;
  /** Event type -> channel; events of other types are not sent. */
  channels: Record<string, string>;
}

function chatTarget(o: ChatOptions): TargetPlugin {
  return {
    name: 'chat', // stored on every delivery row: keep it stable
    retry: scheduleBackoff([1_000, 10_000, 60_000]), // 4 attempts: the first, then 1 s, 10 s, 1 min later
    concurrency: 1, // chat webhooks allow about one message per second
    // Which deliveries an event needs, decided in the publishing transaction: one here, or none.
    route: (event) => (o.channels[event.type] ? [{ endpointId: null }] : []),
    // The request for one event (no `batch` option, so always one). Built at send time, from the current options.
    prepare: ([event]: RelayEvent[]) => ({
      url: o.webhookUrl,
      headers: { 'content-type': 'application/json', 'idempotency-key': event!.id },
      body: JSON.stringify({ channel: o.channels[event!.type], text: `${event!.type}: ${JSON.stringify(event!.data)}` }),
    }),
    // What an answer means: a refusal of the payload or the channel never gets better by retrying.
    classify: (res: OutboundResponse): Verdict => {
      if (res.statusCode >= 200 && res.statusCode < 300) return 'success';
      if (res.statusCode === 429 || res.statusCode >= 500) return 'retry'; // a Retry-After on 429/503 is honoured
      return 'permanent'; // 400 invalid_payload, 403 invalid_token, 404 channel_not_found: dead at once
    },
  };
}
// #endregion plugin

const webhookUrl = process.env.SLACK_WEBHOOK_URL ?? 'http://127.0.0.1:8080/slack';
const db = openDatabase(process.env.DATABASE_URL ?? 'sqlite:./chat.sqlite');
const started = Date.now();

// #region events
const channels = { 'alert.raised': '#ops', 'deploy.finished': '#deploy' }; // '#deploy' is a typo of '#deploys'
let relay = await createRelay({ db, targets: [chatTarget({ webhookUrl, channels })] });
const settled = (r: typeof relay, n: number) =>
  new Promise<void>((resolve) => {
    let left = n;
    const done = () => --left === 0 && resolve();
    r.events.on('delivery:succeeded', (d) => (console.log(`sent ${d.eventType} (HTTP ${d.statusCode})`), done()));
    r.events.on('delivery:dead', (d) => (console.log(`dead: ${d.eventType} (HTTP ${d.statusCode}): ${d.error}`), done()));
    r.events.on('circuit:open', (c) => console.log(`circuit ${c.key} is open`));
  });
// #endregion events
const firstRound = settled(relay, 2);
await relay.start();
await relay.publish([
  createEvent({ type: 'alert.raised', data: { host: 'db-1', disk: '93%' } }),
  createEvent({ type: 'deploy.finished', data: { app: 'shop', version: '1.4.2' } }),
]);
await firstRound;
await relay.stop(); // events fire as answers arrive; the delivery log is written within flushIntervalMs, and by stop()

// #region dead-letters
const dead = await relay.listDeliveries({ status: 'dead', target: 'chat' }); // newest first, `next_cursor` pages on
for (const d of dead.data) {
  const detail = await relay.getDelivery(d.id); // the delivery with every attempt
  for (const a of detail!.attempts_log) console.log(`delivery ${d.id} attempt ${a.number}: ${a.status_code} ${a.response_body}`);
}
// Fix the cause (here: the channel), then re-queue: one delivery with relay.retryDelivery(id),
// or every dead delivery of a time window:
channels['deploy.finished'] = '#deploys';
relay = await createRelay({ db, targets: [chatTarget({ webhookUrl, channels })] });
const recovered = settled(relay, 1);
await relay.start();
const requeued = await relay.recoverDead({ since: started, target: 'chat' });
console.log(`re-queued ${requeued} dead deliveries`);
await recovered;
// #endregion dead-letters

await relay.stop();
const after = await relay.listDeliveries({ target: 'chat' });
console.log(after.data.map((d) => `${d.event_type}: ${d.status} after ${d.attempts} attempts`).join('\n'));
if (after.data.some((d) => d.status !== 'succeeded')) process.exitCode = 1;
await db.close();
