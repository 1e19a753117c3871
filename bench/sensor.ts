/**
 * One simulated MQTT-SN sensor for the load benchmarks (bench/load.ts, bench/hotpath.ts).
 */
import dgram from 'node:dgram';
import { encode } from '../src/codec/index.js';

/** The payload every sensor sends: issue 10's load is 32-byte payloads. */
export const SENSOR_PAYLOAD_BYTES = 32;

/**
 * One simulated sensor: its own UDP socket, short topic "bn", one PUBLISH in flight. Callback-driven
 * (no promise or timer per message) so the generator costs less CPU than the gateway it measures.
 */
export class Sensor {
  readonly socket = dgram.createSocket('udp4');
  private readonly publish: Buffer;
  private msgId = 0;
  private sentAt = 0;
  private onAck: (() => void) | undefined;
  private onConnack: ((returnCode: number) => void) | undefined;
  latencies: number[] = [];
  /** PUBACKs with a return code other than accepted: the message stays in flight and is retransmitted. */
  refused = 0;
  /** Whether its last run ended with a message never acknowledged (see `abandonIfPast`). */
  abandoned = false;
  private endRun: (() => void) | undefined;

  constructor(
    private readonly port: number,
    readonly clientId: string,
    qos: 0 | 1,
  ) {
    this.publish = Buffer.from(
      encode({
        type: 'PUBLISH',
        dup: false,
        qos,
        retain: false,
        topicIdType: 'short',
        topicId: 0x626e,
        msgId: 0,
        data: Buffer.alloc(SENSOR_PAYLOAD_BYTES, 0x61),
      }),
    );
    this.socket.on('message', (msg) => {
      // CONNACK (05), or the PUBACK (0d) of the message in flight; a refusal (return code ≠ 0) is no ack.
      if (msg[1] === 0x05) this.onConnack?.(msg[2]!);
      else if (msg[1] === 0x0d && msg.readUInt16BE(4) === this.msgId) {
        if (msg[6] === 0) this.onAck?.();
        else this.refused++;
      }
    });
  }

  /**
   * CONNECT; rejects if the gateway refuses it or does not answer within `timeoutMs` (Paho, out of client
   * slots, answers nothing), so a bench stops with a reason instead of waiting forever.
   */
  async connect(timeoutMs = 10_000): Promise<void> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.clientId}: no CONNACK within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.onConnack = (returnCode) => {
        clearTimeout(timer);
        if (returnCode === 0) resolve();
        else reject(new Error(`${this.clientId}: CONNACK return code ${returnCode}`));
      };
      this.socket.send(
        encode({
          type: 'CONNECT',
          will: false,
          cleanSession: true,
          protocolId: 1,
          duration: 300,
          clientId: this.clientId,
        }),
        this.port,
        '127.0.0.1',
      );
    });
    this.onConnack = undefined;
  }

  /** Publishes QoS 1 back to back until `until`; resolves with how many were acknowledged. */
  runQos1(until: number): Promise<number> {
    return new Promise((resolve) => {
      let acked = 0;
      this.endRun = () => {
        this.onAck = undefined;
        this.endRun = undefined;
        resolve(acked);
      };
      const sendNext = (): void => {
        if (performance.now() >= until) {
          this.endRun?.();
          return;
        }
        this.msgId = this.msgId === 0xffff ? 1 : this.msgId + 1;
        this.publish.writeUInt16BE(this.msgId, 5);
        this.sentAt = performance.now();
        this.socket.send(this.publish, this.port, '127.0.0.1');
      };
      this.onAck = () => {
        this.latencies.push(performance.now() - this.sentAt);
        acked++;
        sendNext();
      };
      sendNext();
    });
  }

  /** A sensor whose PUBACK is overdue retransmits with DUP, as the spec asks (T_retry). */
  retransmitIfStalled(now: number, afterMs: number): void {
    if (this.onAck && now - this.sentAt > afterMs) {
      this.publish[2]! |= 0x80;
      this.socket.send(this.publish, this.port, '127.0.0.1');
      this.publish[2]! &= 0x7f;
    }
  }

  /** Ends a run still waiting for a PUBACK at `deadline` (a gateway that stalled or died), not to hang. */
  abandonIfPast(now: number, deadline: number): void {
    if (this.endRun && now > deadline) {
      this.abandoned = true;
      this.endRun();
    }
  }

  sendQos0(): void {
    this.socket.send(this.publish, this.port, '127.0.0.1');
  }

  close(): void {
    this.socket.close();
  }
}
