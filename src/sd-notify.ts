import { spawn } from 'node:child_process';
import type { Logger } from 'pino';

/**
 * sd_notify(3) for the systemd unit's Type=notify: READY=1 once the store is open and the UDP
 * sockets are bound, STOPPING=1 when a graceful stop begins. Nothing happens unless systemd asked
 * for it by setting NOTIFY_SOCKET.
 *
 * The notify socket is an AF_UNIX datagram socket, which Node cannot open (dgram is UDP only), and
 * a native addon for one datagram is not worth its per-architecture prebuilds. So the message goes
 * through `systemd-notify`, which every systemd system has. It runs as a child process, hence
 * NotifyAccess=all in the unit; systemd-notify (without --no-block) waits until the manager has
 * processed the message, so the manager never sees it from a PID that is already gone.
 */
export type NotifyState = 'ready' | 'stopping';

const ARGS: Record<NotifyState, (pid: number) => string[]> = {
  ready: (pid) => ['--ready', `--pid=${pid}`],
  stopping: () => ['STOPPING=1'],
};

export function notifySystemd(
  state: NotifyState,
  log: Logger,
  { env = process.env, command = 'systemd-notify' }: { env?: NodeJS.ProcessEnv; command?: string } = {},
): Promise<boolean> {
  if (!env.NOTIFY_SOCKET) return Promise.resolve(false);
  return new Promise((resolve) => {
    const child = spawn(command, ARGS[state](process.pid), { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (err: NodeJS.ErrnoException) => {
      log.error(
        { err: err.message, state },
        `NOTIFY_SOCKET is set but ${command} cannot run (${err.code ?? 'error'}): systemd will not see the ` +
          'gateway as started; install systemd or use Type=simple in the unit',
      );
      resolve(false);
    });
    child.on('close', (code) => {
      if (code !== 0)
        log.error(
          { state, code, stderr: stderr.trim() },
          `${command} failed: systemd may not see this state`,
        );
      resolve(code === 0);
    });
  });
}
