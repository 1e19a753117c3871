import type { Clock } from './clock.js';
import type { Packet } from '../codec/types.js';
import type { Peer } from './peer.js';
import type { Session } from './session.js';
import type { TimerWheel, WheelEntry } from './wheel.js';

/** What a probe decides: the old address answered (keep the session there) or stayed silent. */
export type ProbeOutcome = 'alive' | 'silent';

interface Probe {
  session: Session;
  /** The address being probed (where the session is bound). */
  old: Peer;
  entry: WheelEntry;
  decide: (outcome: ProbeOutcome) => void;
}

export interface ProbeOptions {
  timeoutMs: number;
  /** Probes waiting at once; a takeover beyond that is refused (the newcomer retries later). */
  maxInFlight: number;
}

/**
 * Before a live or sleeping session moves to a new address (a CONNECT or PINGREQ with its client id
 * from elsewhere), the gateway asks the old address: PINGREQ there (§6.11 lets the gateway ping a
 * client). A PINGRESP from it within the timeout means the device is alive where it was, so the
 * newcomer is an impostor (or a second device with the same id) and is refused; silence means the
 * device has moved (NAT rebinding, a reboot onto a new port) and the move goes ahead.
 * Asynchronous and bounded: other devices are served meanwhile.
 */
export class TakeoverProbes {
  private readonly byOldKey = new Map<string, Probe>();
  private readonly bySession = new Map<Session, Probe>();

  constructor(
    private readonly wheel: TimerWheel,
    private readonly clock: Clock,
    private readonly send: (peer: Peer, packet: Packet) => void,
    private readonly options: () => ProbeOptions,
  ) {}

  get inFlight(): number {
    return this.bySession.size;
  }

  /** Whether a probe of this session is under way (a repeated CONNECT waits for its outcome). */
  probing(session: Session): boolean {
    return this.bySession.has(session);
  }

  /**
   * Probes the session's current address; `decide` runs once, with the outcome. Returns false (and
   * never calls `decide`) when the bound of probes in flight is reached.
   */
  start(session: Session, decide: (outcome: ProbeOutcome) => void): boolean {
    const { timeoutMs, maxInFlight } = this.options();
    if (this.bySession.size >= maxInFlight) return false;
    const old = session.peer;
    const probe: Probe = {
      session,
      old,
      decide,
      entry: {
        deadline: this.clock.now() + timeoutMs,
        slot: -1,
        expire: () => this.finish(probe, 'silent'),
      },
    };
    this.byOldKey.set(old.key, probe);
    this.bySession.set(session, probe);
    this.wheel.schedule(probe.entry);
    this.send(old, { type: 'PINGREQ' });
    return true;
  }

  /** A PINGRESP arrived from this address: if it was being probed, the device is alive there. */
  onPingresp(peer: Peer): boolean {
    const probe = this.byOldKey.get(peer.key);
    if (!probe) return false;
    this.finish(probe, 'alive');
    return true;
  }

  /** The session is gone (removed): its probe decides nothing any more. */
  forget(session: Session): void {
    const probe = this.bySession.get(session);
    if (probe) this.drop(probe);
  }

  private finish(probe: Probe, outcome: ProbeOutcome): void {
    if (this.bySession.get(probe.session) !== probe) return;
    this.drop(probe);
    probe.decide(outcome);
  }

  private drop(probe: Probe): void {
    this.wheel.cancel(probe.entry);
    this.bySession.delete(probe.session);
    if (this.byOldKey.get(probe.old.key) === probe) this.byOldKey.delete(probe.old.key);
  }
}
