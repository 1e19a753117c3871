/* global process, console, fetch, AbortSignal, URL */
// Docker HEALTHCHECK for mqttsn-bridge: GET /healthz on the metrics address the running gateway
// actually uses. That address is worked out the way the gateway worked it out: its own loadConfig()
// applied to PID 1's command line and environment (read from /proc, same user), so `metrics:` in a
// config file, MQTTSN_BRIDGE_METRICS and --metrics all count, with the usual precedence. Exit 0 when
// healthy, 1 otherwise (the reason is printed and shown by `docker inspect`). Without a metrics
// address there is no /healthz to ask, and the check passes.
import { readFileSync } from 'node:fs';

const pid = process.env.MQTTSN_BRIDGE_HEALTHCHECK_PID ?? '1';
const nul = (file) =>
  readFileSync(`/proc/${pid}/${file}`, 'latin1')
    .split('\0')
    .filter((s) => s !== '');
let config;
try {
  const cmdline = nul('cmdline');
  const script = cmdline.findIndex((arg) => arg.endsWith('/dist/cli.js'));
  if (script < 0) throw new Error(`PID ${pid} is not mqttsn-bridge: ${cmdline.join(' ')}`);
  const argv = cmdline.slice(script + 1);
  if (['pub', 'sub', 'check-config'].includes(argv[0] ?? '')) {
    console.log(`PID ${pid} runs "${argv[0]}", not the gateway: nothing to check`);
    process.exit(0);
  }
  const env = Object.fromEntries(
    nul('environ').map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
  );
  const { loadConfig } = await import(new URL('../dist/config/load.js', import.meta.url).href);
  config = await loadConfig({ argv, env });
} catch (err) {
  console.log(
    `cannot tell the gateway's metrics address: ${err instanceof Error ? err.message : String(err)}`,
  );
  process.exit(1);
}
if (config.metrics === undefined) {
  console.log(
    'no metrics address configured (--metrics, MQTTSN_BRIDGE_METRICS or metrics:): no /healthz to check',
  );
  process.exit(0);
}
const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(config.metrics);
let host = match?.[1] ?? match?.[2] ?? '';
// A wildcard address is reached over loopback.
if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
if (host === '::') host = '::1';
const url = `http://${host.includes(':') ? `[${host}]` : host}:${match?.[3]}/healthz`;
try {
  const response = await fetch(url, { signal: AbortSignal.timeout(4000) });
  const body = (await response.text()).trim();
  console.log(`${url}: ${response.status} ${body}`);
  process.exit(response.ok ? 0 : 1);
} catch (err) {
  console.log(`${url}: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
