/* global process, console, fetch, AbortSignal */
// Docker HEALTHCHECK for mqttsn-bridge: GET /healthz on the metrics address in MQTTSN_BRIDGE_METRICS
// (set in the image; HOST:PORT, [IPV6]:PORT). Exit 0 when healthy, 1 otherwise (the reason is printed
// and shown by `docker inspect`). With MQTTSN_BRIDGE_METRICS empty the metrics server is off (or
// configured elsewhere) and there is nothing to ask: the check passes.
const address = process.env.MQTTSN_BRIDGE_METRICS ?? '';
if (address.trim() === '') {
  console.log('MQTTSN_BRIDGE_METRICS is empty: no /healthz to check');
  process.exit(0);
}
const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address.trim());
if (!match) {
  console.log(`MQTTSN_BRIDGE_METRICS=${JSON.stringify(address)} is not HOST:PORT`);
  process.exit(1);
}
let host = match[1] ?? match[2] ?? '';
// A wildcard address is reached over loopback.
if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
if (host === '::') host = '::1';
const url = `http://${host.includes(':') ? `[${host}]` : host}:${match[3]}/healthz`;
try {
  const response = await fetch(url, { signal: AbortSignal.timeout(4000) });
  const body = (await response.text()).trim();
  console.log(`${url}: ${response.status} ${body}`);
  process.exit(response.ok ? 0 : 1);
} catch (err) {
  console.log(`${url}: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
