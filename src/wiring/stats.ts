import type { Gateway } from '../gateway/gateway.js';
import type { Outbox } from '../store/outbox.js';
import type { Clock } from '../time.js';
import type { Uplink } from '../uplink/uplink.js';

/** Periodic gateway statistics (retained JSON) for dashboards that read the broker rather than /metrics. */
export function startStatsPublisher(
  topic: string,
  intervalSeconds: number,
  sources: { gateway: Gateway; outbox: Outbox; uplink: Uplink; clock: Clock },
): NodeJS.Timeout {
  return setInterval(() => publishStats(topic, sources), intervalSeconds * 1000).unref();
}

export function publishStats(
  topic: string,
  { gateway, outbox, uplink, clock }: { gateway: Gateway; outbox: Outbox; uplink: Uplink; clock: Clock },
): void {
  const devices: Record<string, number> = {};
  for (const session of gateway.sessions.all()) devices[session.state] = (devices[session.state] ?? 0) + 1;
  const { messages, bytes, oldestReceivedAt, dropped } = outbox.stats;
  const stats = gateway.stats;
  const payload = {
    time: new Date(clock.wallNow()).toISOString(),
    devices,
    received: {
      'qos-1': stats.publishIn[0],
      qos0: stats.publishIn[1],
      qos1: stats.publishIn[2],
      qos2: stats.publishIn[3],
    },
    delivered: stats.downlinkDelivered,
    outbox: {
      messages,
      bytes,
      oldestAgeSeconds:
        oldestReceivedAt === null ? 0 : Math.round((clock.wallNow() - oldestReceivedAt) / 1000),
      dropped,
    },
    uplink: { state: uplink.state, reconnects: uplink.stats.reconnects },
    malformed: stats.malformed,
  };
  outbox.append({ clientId: '', topic, payload: Buffer.from(JSON.stringify(payload)), retain: true, qos: 0 });
}
