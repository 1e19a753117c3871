import { BlockList, isIP } from 'node:net';
import type { HandlerEnv } from './handlers/env.js';
import type { GatewayOptions } from './options.js';
import { describePeer, type Peer } from './peer.js';

/**
 * The allow-list: which client ids may connect, and from where. An entry is an id, a prefix ending
 * in '*', or '*' (any id), optionally followed by '@' and an address or CIDR range (IPv4 or IPv6):
 * `pump-7@10.0.4.17`, `sensor-*@10.0.4.0/24`, `*@fd00::/64`. An entry with an address binds the ids
 * it names to that range, like Paho's clients.conf; a client is allowed when any entry matches both
 * its id and its address. An empty list allows everyone.
 *
 * QoS −1 PUBLISH has no client id: with a list set, it is taken only from addresses of an entry whose
 * id is '*' or of `--allow-qos-minus-one`.
 */
export interface AllowRule {
  /** The id, or the prefix for a trailing '*' ('' with any: true for '*'). */
  id: string;
  prefix: boolean;
  /** Where the id may come from; undefined: anywhere. */
  addresses?: BlockList;
}

export class AllowList {
  private constructor(
    private readonly rules: readonly AllowRule[],
    private readonly anonymous: BlockList | undefined,
    private readonly anonymousAnywhere: boolean,
  ) {}

  static compile(entries: readonly string[], qosMinusOne: readonly string[] = []): AllowList {
    const rules = entries.map(parseAllowEntry);
    let anonymous: BlockList | undefined;
    let anywhere = false;
    const addTo = (range: string): void => {
      anonymous ??= new BlockList();
      addRange(anonymous, range);
    };
    for (const range of qosMinusOne) addTo(range);
    for (const [i, rule] of rules.entries()) {
      if (!(rule.prefix && rule.id === '')) continue;
      const at = entries[i]!.lastIndexOf('@');
      if (at < 0) anywhere = true;
      else addTo(entries[i]!.slice(at + 1));
    }
    return new AllowList(rules, anonymous, anywhere);
  }

  get isEmpty(): boolean {
    return this.rules.length === 0;
  }

  /** May this client id connect (or wake) from this address? */
  allows(clientId: string, address: string): boolean {
    if (this.rules.length === 0) return true;
    const ip = plainAddress(address);
    return this.rules.some(
      (rule) =>
        (rule.prefix ? clientId.startsWith(rule.id) : clientId === rule.id) &&
        (rule.addresses === undefined || (ip !== undefined && check(rule.addresses, ip))),
    );
  }

  /** May a sender without a session publish at QoS −1 from this address? */
  allowsWithoutSession(address: string): boolean {
    if (this.rules.length === 0 || this.anonymousAnywhere) return true;
    const ip = plainAddress(address);
    return this.anonymous !== undefined && ip !== undefined && check(this.anonymous, ip);
  }
}

/** `ID`, `PREFIX*` or `*`, optionally `@ADDRESS[/BITS]`; throws with the reason for a bad range. */
export function parseAllowEntry(entry: string): AllowRule {
  const at = entry.lastIndexOf('@');
  const idPart = at < 0 ? entry : entry.slice(0, at);
  const prefix = idPart.endsWith('*');
  const rule: AllowRule = { id: prefix ? idPart.slice(0, -1) : idPart, prefix };
  if (at >= 0) {
    rule.addresses = new BlockList();
    addRange(rule.addresses, entry.slice(at + 1));
  }
  return rule;
}

/** Why an allow-list entry or QoS −1 range cannot be used, or undefined (for the config schema). */
export function allowEntryProblem(entry: string): string | undefined {
  try {
    parseAllowEntry(entry);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export function rangeProblem(range: string): string | undefined {
  try {
    addRange(new BlockList(), range);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function addRange(list: BlockList, range: string): void {
  const slash = range.indexOf('/');
  const address = (slash < 0 ? range : range.slice(0, slash)).replace(/^\[(.*)\]$/, '$1');
  const family = isIP(address);
  if (family === 0) throw new Error(`"${range}" is not an IPv4 or IPv6 address or CIDR range`);
  const max = family === 4 ? 32 : 128;
  const bits = slash < 0 ? max : Number(range.slice(slash + 1));
  if (!Number.isInteger(bits) || bits < 0 || bits > max)
    throw new Error(`"${range}": prefix length must be 0..${max}`);
  list.addSubnet(address, bits, family === 4 ? 'ipv4' : 'ipv6');
}

/** An IPv4-mapped IPv6 address (a dual-stack socket) is checked as the IPv4 address it carries. */
function plainAddress(address: string): string | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const ip = mapped ? mapped[1]! : address;
  return isIP(ip) === 0 ? undefined : ip;
}

function check(list: BlockList, ip: string): boolean {
  return list.check(ip, isIP(ip) === 4 ? 'ipv4' : 'ipv6');
}

const compiled = new WeakMap<readonly string[], AllowList>();

/** The compiled allow-list of the gateway's current options (recompiled when a reload replaces them). */
export function allowListOf(options: Pick<GatewayOptions, 'allowClients' | 'allowQosMinusOne'>): AllowList {
  const entries = options.allowClients;
  let list = compiled.get(entries);
  if (!list) {
    list = AllowList.compile(entries, options.allowQosMinusOne ?? []);
    compiled.set(entries, list);
  }
  return list;
}

/**
 * QoS −1 from a sender without a session, with an allow-list set: taken only from an address rule's
 * range; otherwise dropped, counted and warned about (rate-limited). Returns whether to go on.
 */
export function admitWithoutSession(
  ctx: Pick<HandlerEnv, 'settings' | 'stats' | 'warn'>,
  peer: Peer,
): boolean {
  if (allowListOf(ctx.settings.current).allowsWithoutSession(peer.address)) return true;
  ctx.stats.qosMinusOneNotAllowed++;
  ctx.warn.warn(
    'qos-1-not-allowed',
    { address: describePeer(peer) },
    'QoS -1 PUBLISH from an address without an allow-list rule dropped',
  );
  return false;
}
