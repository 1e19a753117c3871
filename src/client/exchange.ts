import type { Packet } from '../codec/types.js';
import { GatewayTimeoutError } from './errors.js';

/** §6.13: resend after T_retry without an answer; give up after N_retry resends. */
export interface RetryPolicy {
  /** T_retry in milliseconds. */
  intervalMs: number;
  /** N_retry: resends after the first send (0 = send once). */
  retries: number;
}

export interface RequestOptions<T extends Packet> {
  /** Names the request in errors, e.g. 'REGISTER "a/b"'. */
  what: string;
  isAnswer: (packet: Packet) => packet is T;
  /** What to send on timeout (PUBLISH and SUBSCRIBE set DUP); default: the packet again. */
  resend?: Packet;
  /** Packets that prove the gateway is working on it: they restart the wait without using a retry. */
  isProgress?: (packet: Packet) => boolean;
}

interface PendingRequest {
  what: string;
  isAnswer: (packet: Packet) => boolean;
  isProgress: ((packet: Packet) => boolean) | undefined;
  resend: Packet;
  retriesLeft: number;
  timer: NodeJS.Timeout;
  resolve: (packet: Packet) => void;
  reject: (err: Error) => void;
}

/**
 * The client's one outstanding request (v1.2 allows one at a time, which also keeps order) and its
 * retransmission: one timer, re-armed per attempt.
 */
export class Exchange {
  private pending: PendingRequest | undefined;

  constructor(
    private readonly send: (packet: Packet) => void,
    private readonly retry: RetryPolicy,
    /** The gateway, as errors name it. */
    private readonly peer: string,
  ) {}

  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** Sends `packet` and resolves with its answer; rejects with GatewayTimeoutError when none comes. */
  request<T extends Packet>(packet: Packet, options: RequestOptions<T>): Promise<T> {
    if (this.pending) {
      return Promise.reject(new Error(`${options.what} while ${this.pending.what} is waiting`));
    }
    return new Promise<T>((resolve, reject) => {
      this.send(packet);
      this.pending = {
        what: options.what,
        isAnswer: options.isAnswer,
        isProgress: options.isProgress,
        resend: options.resend ?? packet,
        retriesLeft: this.retry.retries,
        timer: setTimeout(() => this.onTimeout(), this.retry.intervalMs),
        resolve: resolve as (packet: Packet) => void,
        reject,
      };
    });
  }

  /** Offers a packet from the gateway; true when it was the answer to the pending request. */
  offer(packet: Packet): boolean {
    const pending = this.pending;
    if (!pending) return false;
    if (pending.isAnswer(packet)) {
      this.settle(pending);
      pending.resolve(packet);
      return true;
    }
    if (pending.isProgress?.(packet)) pending.timer.refresh();
    return false;
  }

  /** Ends the pending request, if any, with `err`. */
  abort(err: Error): void {
    const pending = this.pending;
    if (!pending) return;
    this.settle(pending);
    pending.reject(err);
  }

  private onTimeout(): void {
    const pending = this.pending;
    if (!pending) return;
    if (pending.retriesLeft === 0) {
      const attempts = this.retry.retries + 1;
      this.abort(
        new GatewayTimeoutError(
          `no answer from the gateway at ${this.peer} to ${pending.what} ` +
            `(${attempts} attempt${attempts === 1 ? '' : 's'}, ${this.retry.intervalMs / 1000} s apart)`,
        ),
      );
      return;
    }
    pending.retriesLeft--;
    try {
      this.send(pending.resend);
      pending.timer.refresh();
    } catch (err) {
      this.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private settle(pending: PendingRequest): void {
    clearTimeout(pending.timer);
    this.pending = undefined;
  }
}
