/**
 * Loopback port helpers. Everything in the test harness uses 127.0.0.1 only.
 */
import net from 'node:net';
import { sleep } from './wait.js';

export const LOOPBACK = '127.0.0.1';

/**
 * Ask the kernel for a currently free TCP port on 127.0.0.1 (bind port 0, read it, close).
 * The port is free only at that moment: callers that spawn a process on it must retry on EADDRINUSE.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** Resolve true if a TCP connection to host:port is accepted within `timeoutMs`, false otherwise. */
export function canConnect(port: number, host = LOOPBACK, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

export interface WaitForPortOptions {
  host?: string;
  /** Give up after this many milliseconds (default 10000). */
  timeoutMs?: number;
}

/** Wait until host:port accepts TCP connections. */
export async function waitForPort(
  port: number,
  { host = LOOPBACK, timeoutMs = 10_000 }: WaitForPortOptions = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await canConnect(port, host)) return;
    if (Date.now() >= deadline)
      throw new Error(`port ${host}:${port} did not accept connections within ${timeoutMs} ms`);
    await sleep(25);
  }
}
