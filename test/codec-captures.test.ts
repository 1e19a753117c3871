/**
 * Real bytes from third-party MQTT-SN clients (fixtures/wire-captures.json): every packet of every
 * scenario, both directions, must decode to the type and field values the capture's own decoding
 * names, and re-encode byte for byte. Subtests carry the scenario label.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';

import { decode, encode, MqttSnCodecError, shortTopicName } from '../src/codec/index.js';
import type { Packet, PacketOf } from '../src/codec/index.js';

interface CapturedPacket {
  dir: 'client->gw' | 'gw->client';
  hex: string;
  decoded: string;
}
interface Scenario {
  label: string;
  command: string | string[];
  exit_code: number | number[];
  packets: CapturedPacket[];
}

const scenarios = JSON.parse(
  readFileSync(new URL('../fixtures/wire-captures.json', import.meta.url), 'utf8'),
) as Scenario[];

function hex(s: string): Uint8Array {
  assert.match(s, /^([0-9a-f]{2})*$/);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(s.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

/** A Python bytes/str literal body (b'...' or '...') → bytes. */
function pyBytes(body: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      for (const b of new TextEncoder().encode(c)) out.push(b);
      continue;
    }
    const e = body[++i]!;
    if (e === 'n') out.push(10);
    else if (e === 'r') out.push(13);
    else if (e === 't') out.push(9);
    else if (e === '\\' || e === "'" || e === '"') out.push(e.charCodeAt(0));
    else if (e === 'x') {
      out.push(Number.parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else assert.fail(`unknown escape \\${e} in ${body}`);
  }
  return Uint8Array.from(out);
}

const TOKEN = /(\w+)=(b'(?:[^'\\]|\\.)*'|'(?:[^'\\]|\\.)*'|\[.*\]|0x[0-9a-f]+(?:\([^)]*\))?|\S+)/g;

/** Checks a decoded packet against the capture's textual decoding ("PUBLISH len=12 flags=... topic=1 ..."). */
function checkAgainstText(text: string, bytes: Uint8Array, p: Packet): void {
  const word = text.split(' ')[0]!;
  assert.equal(p.type, word === 'FRWDENCAP' ? 'ENCAPSULATED' : word, `type of "${text}"`);
  const q = p as unknown as Record<string, unknown>;
  const rest = text.slice(word.length);
  for (const m of rest.matchAll(TOKEN)) {
    const key = m[1]!;
    const raw = m[2]!;
    const num = (): number => Number(raw);
    const str = (): string => {
      assert.match(raw, /^'.*'$/, `${key} should be quoted: ${raw}`);
      return new TextDecoder().decode(pyBytes(raw.slice(1, -1)));
    };
    const bin = (): Uint8Array => {
      assert.match(raw, /^b'.*'$/, `${key} should be bytes: ${raw}`);
      return pyBytes(raw.slice(2, -1));
    };
    switch (key) {
      case 'len':
        assert.equal(num(), bytes[0] === 1 ? (bytes[1]! << 8) | bytes[2]! : bytes[0], 'len');
        break;
      case 'flags': {
        const [, flagHex, inner] = /^0x([0-9a-f]{2})\((.*)\)$/.exec(raw)!;
        const flagsAt = bytes[0] === 1 ? 4 : 2;
        assert.equal(bytes[flagsAt], Number.parseInt(flagHex!, 16), 'flags byte');
        const f = Object.fromEntries([...inner!.matchAll(/(\w+)=(\S+)/g)].map((x) => [x[1], x[2]]));
        if ('dup' in q) assert.equal(q.dup, f.dup === '1', 'dup');
        if ('qos' in q && !(p.type === 'WILLTOPIC' && q.willTopic === undefined)) {
          assert.equal(q.qos, Number(f.qos), 'qos');
        }
        if ('retain' in q) assert.equal(q.retain, f.retain === '1', 'retain');
        if ('will' in q) assert.equal(q.will, f.will === '1', 'will');
        if ('cleanSession' in q) assert.equal(q.cleanSession, f.clean === '1', 'clean');
        if ('topicIdType' in q) assert.equal(q.topicIdType, f.topic, 'topic id type');
        break;
      }
      case 'proto':
        assert.equal(q.protocolId, num(), 'protocolId');
        break;
      case 'duration':
        assert.equal(q.duration, num(), 'duration');
        break;
      case 'clientid':
        assert.equal(q.clientId, str(), 'clientId');
        break;
      case 'rc':
        assert.equal(q.returnCode, num(), 'returnCode');
        break;
      case 'msgid':
        assert.equal(q.msgId, num(), 'msgId');
        break;
      case 'topicid':
      case 'id':
        assert.equal(q.topicId, num(), 'topicId');
        break;
      case 'topic': // PUBLISH: a number, or 'xx' for a short topic name
        if (raw.startsWith("'")) assert.equal(shortTopicName(q.topicId as number), str(), 'short topic');
        else assert.equal(q.topicId, num(), 'topicId');
        break;
      case 'name':
        if (p.type === 'WILLTOPIC') assert.equal(q.willTopic, str(), 'willTopic');
        else if (q.topicIdType === 'short')
          assert.equal(shortTopicName(q.topicId as number), str(), 'short name');
        else assert.equal(q.topicName, str(), 'topicName');
        break;
      case 'payload':
        assert.equal(toHex((p as PacketOf<'PUBLISH'>).data), toHex(bin()), 'payload');
        break;
      case 'message':
        assert.equal(toHex((p as PacketOf<'WILLMSG'>).willMsg), toHex(bin()), 'will message');
        break;
      case 'ctrl':
        assert.equal(q.radius, num() & 3, 'radius');
        assert.equal(bytes[bytes[0] === 1 ? 4 : 2], num(), 'ctrl byte');
        break;
      case 'wlnid':
        assert.equal(toHex(q.wirelessNodeId as Uint8Array), raw, 'wireless node id');
        break;
      case 'inner': {
        const enc = p as PacketOf<'ENCAPSULATED'>;
        const innerAt = bytes[0] === 1 ? (bytes[1]! << 8) | bytes[2]! : bytes[0]!;
        checkAgainstText(raw.slice(1, -1), bytes.subarray(innerAt), enc.packet);
        break;
      }
      default:
        assert.fail(`capture field ${key} is not checked (${text})`);
    }
  }
}

let scenariosSeen = 0;
let packetsChecked = 0;
const typesSeen = new Map<string, number>();

describe('wire captures: decode, compare with the capture text, re-encode byte for byte', () => {
  it('loads the fixture file', () => {
    assert.ok(scenarios.length >= 50, `expected ~54 scenarios, got ${scenarios.length}`);
    assert.equal(new Set(scenarios.map((s) => s.label)).size, scenarios.length, 'labels are unique');
  });

  for (const scenario of scenarios) {
    it(scenario.label, () => {
      scenariosSeen++;
      scenario.packets.forEach((cp, i) => {
        const where = `${scenario.label} #${i} ${cp.dir} ${cp.hex}`;
        const bytes = hex(cp.hex);
        let packet: Packet;
        try {
          packet = decode(bytes);
        } catch (err) {
          assert.ok(err instanceof MqttSnCodecError, `${where}: ${String(err)}`);
          assert.fail(`${where}: ${err.reason}`);
        }
        checkAgainstText(cp.decoded, bytes, packet);
        assert.equal(toHex(encode(packet)), cp.hex, `${where}: re-encoding differs`);
        packetsChecked++;
        typesSeen.set(packet.type, (typesSeen.get(packet.type) ?? 0) + 1);
      });
    });
  }

  it('PA4 (Paho non-standard QoS -1 with a normal topic) decodes as an ordinary PUBLISH and round-trips', () => {
    const pa4 = scenarios.find((s) => s.label.startsWith('PA4.'));
    assert.ok(pa4, 'scenario PA4 present');
    const bytes = hex(pa4.packets[0]!.hex);
    const p = decode(bytes) as PacketOf<'PUBLISH'>;
    assert.equal(p.type, 'PUBLISH');
    assert.equal(p.qos, -1);
    assert.equal(p.topicIdType, 'normal');
    assert.equal(p.topicId, 17);
    // what the gateway may do with it: the first topicId bytes of data are the topic name
    assert.equal(new TextDecoder().decode(p.data.subarray(0, p.topicId)), 'a long topic name');
    assert.equal(new TextDecoder().decode(p.data.subarray(p.topicId)), 'mypayload');
    assert.equal(toHex(encode(p)), pa4.packets[0]!.hex);
  });

  it('ZN (largest mqtt-sn-pub PUBLISH) is 255 bytes in the short form', () => {
    const zn = scenarios.find((s) => s.label.startsWith('ZN.'));
    assert.ok(zn);
    const publish = zn.packets.find((x) => x.decoded.startsWith('PUBLISH'))!;
    const bytes = hex(publish.hex);
    assert.equal(bytes.length, 255);
    assert.equal(bytes[0], 0xff);
    assert.equal((decode(bytes) as PacketOf<'PUBLISH'>).data.length, 248);
    assert.equal(decode(bytes).longLength, undefined);
  });

  after(() => {
    const expected = scenarios.reduce((n, s) => n + s.packets.length, 0);
    console.log(
      `wire captures: ${scenariosSeen}/${scenarios.length} scenarios, ${packetsChecked}/${expected} packets round-tripped; ` +
        [...typesSeen].map(([t, n]) => `${t}=${n}`).join(' '),
    );
  });

  it('checked every packet of every scenario (runs last)', () => {
    const expected = scenarios.reduce((n, s) => n + s.packets.length, 0);
    assert.equal(scenariosSeen, scenarios.length);
    assert.equal(packetsChecked, expected);
  });
});
