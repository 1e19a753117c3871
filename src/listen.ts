import type { EventEmitter } from 'node:events';

/**
 * Runs `bind` (server.listen, socket.bind, …) and resolves once it has bound, or rejects with the
 * 'error' event it emits instead (EADDRINUSE, EACCES, …), leaving no stray listener behind.
 */
export function whenBound(target: EventEmitter, bind: (bound: () => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    target.once('error', reject);
    bind(() => {
      target.off('error', reject);
      resolve();
    });
  });
}
