/**
 * The uplink's default client id, unique per installation. Pis cloned from one image keep the
 * hostname, so `mqttsn-bridge-<hostname>-<gatewayId>` repeated across a fleet, and two gateways with
 * one id take the broker session from each other in a loop. Instead the default is generated once,
 * `mqttsn-bridge-<hostname>-<8 random hex digits>`, and kept in the data dir's LevelDB (meta key
 * `uplink.identity`), so it survives restarts and upgrades; an explicit --uplink-client-id wins.
 *
 * A data dir that already holds an outbox but no identity (written by an older version) adopts the
 * old default, so the `mqttsn-id` of messages already stored and the broker session stay the same.
 */
import { randomBytes } from 'node:crypto';
import type { Store } from '../store/db.js';
import { metaSublevel, OUTBOX_SEQ_META_KEY } from '../store/sublevels.js';

export const IDENTITY_META_KEY = 'uplink.identity';

export type IdentitySource = 'configured' | 'stored' | 'adopted' | 'generated';

export async function uplinkIdentity(
  store: Store,
  options: { configured: string | undefined; hostname: string; gatewayId: number | string },
): Promise<{ clientId: string; source: IdentitySource }> {
  if (options.configured !== undefined) return { clientId: options.configured, source: 'configured' };
  const meta = metaSublevel(store);
  const stored = await meta.get(IDENTITY_META_KEY);
  if (stored !== undefined && stored.length > 0)
    return { clientId: stored.toString('utf8'), source: 'stored' };
  const existing = (await meta.get(OUTBOX_SEQ_META_KEY)) !== undefined;
  const clientId = existing
    ? `mqttsn-bridge-${options.hostname}-${options.gatewayId}`
    : `mqttsn-bridge-${options.hostname}-${randomBytes(4).toString('hex')}`;
  await meta.put(IDENTITY_META_KEY, Buffer.from(clientId, 'utf8'));
  return { clientId, source: existing ? 'adopted' : 'generated' };
}
