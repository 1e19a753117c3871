/**
 * Head-of-line safety for link drops: which outbox entry, if any, is killing the link?
 *
 * Some brokers answer a message they refuse by closing the connection (Mosquitto on a malformed topic
 * or a packet over max_packet_size). The entry is then the oldest one in flight, and it is sent again
 * first on every reconnect, so nothing behind it ever moves. A drop is blamed on that entry only when
 * the broker closed the link (not our own timeouts) within `SEND_TO_DROP_MS` of sending it, on a link
 * younger than `YOUNG_LINK_MS`. After `QUICK_DROPS` such drops in a row on the same entry it is sent
 * alone (window 1: a probe); only if `PROBE_DROPS` probes die the same way is it given up on. A healthy
 * message would have to be sent alone twice, on a fresh link, right before the broker closed it each
 * time: a broker outage does not look like that, and the probe that gets a PUBACK clears the suspicion.
 */

export const SEND_TO_DROP_MS = 2000;
export const YOUNG_LINK_MS = 10_000;
export const QUICK_DROPS = 3;
export const PROBE_DROPS = 2;

export interface LinkDrop {
  /** The broker (or the network) closed the link, rather than this gateway. */
  byPeer: boolean;
  linkAgeMs: number;
  /** The oldest PUBLISH still awaiting PUBACK when the link dropped. */
  oldest?: { seq: number; sentAgoMs: number; inflight: number };
}

export type Verdict =
  | { action: 'none' }
  | { action: 'probe'; seq: number }
  | { action: 'give-up'; seq: number; attempts: number };

export class HeadOfLine {
  private suspect: { seq: number; drops: number; probes: number } | undefined;

  /** The entry to send alone on the next link, if one is under suspicion and still waiting. */
  probeSeq(isLive: (seq: number) => boolean): number | undefined {
    const s = this.suspect;
    if (s !== undefined && !isLive(s.seq)) this.suspect = undefined;
    return this.suspect !== undefined && this.suspect.drops >= QUICK_DROPS ? this.suspect.seq : undefined;
  }

  /** Whether this drop is one the oldest in-flight entry can be blamed for. */
  static attributable(drop: LinkDrop): boolean {
    return (
      drop.byPeer &&
      drop.oldest !== undefined &&
      drop.linkAgeMs < YOUNG_LINK_MS &&
      drop.oldest.sentAgoMs < SEND_TO_DROP_MS
    );
  }

  onLinkDropped(drop: LinkDrop): Verdict {
    if (!HeadOfLine.attributable(drop)) return { action: 'none' };
    const { seq, inflight } = drop.oldest!;
    const s = this.suspect;
    if (s === undefined || s.seq !== seq) {
      this.suspect = { seq, drops: 1, probes: 0 };
      return { action: 'none' };
    }
    if (s.drops < QUICK_DROPS) {
      s.drops++;
      return s.drops >= QUICK_DROPS ? { action: 'probe', seq } : { action: 'none' };
    }
    // Probing: only a drop with the suspect alone in flight counts against it.
    if (inflight === 1) s.probes++;
    if (s.probes >= PROBE_DROPS) {
      this.suspect = undefined;
      return { action: 'give-up', seq, attempts: s.drops + s.probes };
    }
    return { action: 'probe', seq };
  }

  /** The broker answered `seq` (PUBACK of any kind): it does not kill the link. */
  settled(seq: number): void {
    if (this.suspect?.seq === seq) this.suspect = undefined;
  }
}
