import type { OutboxStats } from '../store/outbox.js';
import type { UplinkStats } from '../uplink/uplink.js';

export interface OutboxQuota {
  maxMessages: number;
  maxBytes: number;
}

export type Health = { ok: true } | { ok: false; reason: string };

/** Default for how long a connected uplink may go without an answer from the broker while messages wait. */
export const DEFAULT_STALL_MS = 60_000;

/** Above this share of its quota, an outbox that is not draining makes the bridge unhealthy. */
export const OUTBOX_UNHEALTHY_FILL = 0.9;

/**
 * The /healthz rule. Healthy when the gateway accepts MQTT-SN traffic AND either the uplink is
 * connected or the outbox is below 90% of its quota (messages and bytes alike).
 *
 * A broker outage alone is not a failure: buffering through it is the bridge's job. It becomes one when
 * the buffer is about to run out, because from then on messages are refused or dropped.
 *
 * Unhealthy as well, whatever the fill: the broker gave the uplink's session to another connection
 * (same client id), or the uplink is stalled — connected now or within `stallMs`, messages waiting,
 * and none answered by the broker for `stallMs` (a link that keeps dying on a message, a broker that
 * takes nothing). A broker that is simply down for long is the quota rule's business, not this one.
 */
export function checkHealth(input: {
  accepting: boolean;
  uplink: Pick<UplinkStats, 'state'> &
    Partial<Pick<UplinkStats, 'stalledForMs' | 'disconnectedForMs' | 'sessionTakenOver'>>;
  outbox: Pick<OutboxStats, 'messages' | 'bytes'> & Partial<Pick<OutboxStats, 'writeFailing'>>;
  quota: OutboxQuota;
  stallMs?: number;
}): Health {
  if (!input.accepting) return { ok: false, reason: 'gateway is not accepting MQTT-SN traffic' };
  // Nothing new can be acknowledged while the disk refuses writes (full): not healthy, whatever the link.
  if (input.outbox.writeFailing !== undefined) return { ok: false, reason: input.outbox.writeFailing };
  const { uplink } = input;
  if (uplink.sessionTakenOver === true) {
    return {
      ok: false,
      reason: 'uplink session taken over by another connection with the same client id',
    };
  }
  const stallMs = input.stallMs ?? DEFAULT_STALL_MS;
  const stalledFor = uplink.stalledForMs ?? 0;
  const recentlyConnected = uplink.disconnectedForMs != null && uplink.disconnectedForMs < stallMs;
  if (input.outbox.messages > 0 && stalledFor > stallMs && recentlyConnected) {
    return {
      ok: false,
      reason:
        `uplink stalled: the broker answered none of ${input.outbox.messages} waiting messages ` +
        `for ${Math.round(stalledFor / 1000)} s (limit ${Math.round(stallMs / 1000)} s)`,
    };
  }
  if (uplink.state === 'connected') return { ok: true };
  const fill = outboxFill(input.outbox, input.quota);
  if (fill < OUTBOX_UNHEALTHY_FILL) return { ok: true };
  const { messages, bytes } = input.outbox;
  return {
    ok: false,
    reason:
      `uplink ${input.uplink.state} and outbox at ${Math.floor(fill * 100)}% of its quota ` +
      `(${messages} of ${input.quota.maxMessages} messages, ${bytes} of ${input.quota.maxBytes} bytes)`,
  };
}

/** The larger of the message and byte fill ratios (0..1). */
export function outboxFill(outbox: Pick<OutboxStats, 'messages' | 'bytes'>, quota: OutboxQuota): number {
  const byMessages = quota.maxMessages > 0 ? outbox.messages / quota.maxMessages : 0;
  const byBytes = quota.maxBytes > 0 ? outbox.bytes / quota.maxBytes : 0;
  return Math.max(byMessages, byBytes);
}
