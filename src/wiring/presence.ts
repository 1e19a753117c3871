import type { Session, SessionState } from '../gateway/session.js';
import type { Outbox } from '../store/outbox.js';

/** What a device's state means to someone watching it from the broker side. */
const PRESENCE: Partial<Record<SessionState, string>> = {
  active: 'online',
  asleep: 'asleep',
  // Awake is the moment an asleep device collects its messages: still "asleep" to observers.
  awake: 'asleep',
  disconnected: 'offline',
  lost: 'lost',
};

/** Device presence as retained messages, through the outbox: in order with the device's own messages. */
export function presencePublisher(
  template: string,
  outbox: Outbox,
): (session: Session, previous: SessionState) => void {
  return (session, previous) => {
    const word = PRESENCE[session.state];
    if (word === undefined || word === PRESENCE[previous]) return;
    outbox.append({
      clientId: session.clientId,
      topic: template.replaceAll('{clientId}', session.clientId),
      payload: Buffer.from(word),
      retain: true,
      qos: 1,
    });
  };
}
