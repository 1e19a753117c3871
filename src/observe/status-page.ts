/**
 * The status page: one static HTML document, no build step, no external assets. Its script polls
 * api/status every 5 s and fills the page with textContent only: client ids and log messages come
 * from devices and are attacker-controlled. The CSP (sent by the server) allows this one inline
 * script by hash and nothing else, as a second line of defence.
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root { --bg: #f6f7f9; --card: #fff; --text: #1f2328; --muted: #656d76; --line: #d8dee4;
  --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --accent: #0969da; color-scheme: light dark; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --card: #161b22; --text: #e6edf3; --muted: #8d96a0; --line: #30363d;
    --ok: #3fb950; --warn: #d29922; --bad: #f85149; --accent: #4493f8; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 12px; padding: 12px 16px;
  border-bottom: 1px solid var(--line); background: var(--card); }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 13px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
main { display: flex; flex-direction: column; gap: 12px; padding: 12px; max-width: 1100px; margin: 0 auto; }
.row { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; min-width: 0; }
.muted { color: var(--muted); }
.big { font-size: 34px; font-weight: 700; line-height: 1.1; margin: 0 0 6px; }
.wrap { overflow-wrap: anywhere; }
.stale { color: var(--bad); font-weight: 600; }
.s-connected, .s-ok { color: var(--ok); }
.s-connecting { color: var(--warn); }
.s-disconnected, .s-bad { color: var(--bad); }
p { margin: 4px 0; }
dl.facts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 8px 16px; margin: 8px 0 0; }
dl.facts dt { font-size: 12px; color: var(--muted); }
dl.facts dd { margin: 0; font-weight: 600; font-variant-numeric: tabular-nums; }
.chart { position: relative; }
.chart svg { display: block; width: 100%; height: 160px; background: var(--bg); border-radius: 4px; }
.chart .line { fill: none; stroke: var(--accent); stroke-width: 2; vector-effect: non-scaling-stroke; }
.chart .area { fill: var(--accent); opacity: .15; }
.chart .down { fill: var(--bad); opacity: .18; }
.axis { display: flex; justify-content: space-between; font-size: 12px; color: var(--muted); margin-top: 4px; }
.legend { font-size: 12px; color: var(--muted); margin-top: 2px; }
.legend .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; vertical-align: -1px;
  background: var(--bad); opacity: .35; }
.table-scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 6px 14px 6px 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; }
td.id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px;
  max-width: 16em; overflow: hidden; text-overflow: ellipsis; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
  border: 1px solid currentColor; }
.st-active, .st-awake { color: var(--ok); }
.st-asleep, .st-connecting { color: var(--warn); }
.st-disconnected { color: var(--muted); }
.st-lost { color: var(--bad); }
ol.recent { list-style: none; margin: 0; padding: 0; }
ol.recent li { padding: 6px 0; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
ol.recent .when { font-size: 12px; color: var(--muted); margin-right: 6px; }
ol.recent .lvl-warn { color: var(--warn); font-weight: 600; margin-right: 6px; }
ol.recent .lvl-error, ol.recent .lvl-fatal { color: var(--bad); font-weight: 600; margin-right: 6px; }
ol.recent .who { font-size: 12px; color: var(--muted); display: block; }
@media (max-width: 480px) {
  .big { font-size: 28px; } main, .row { gap: 8px; } main { padding: 8px; }
  td.id { max-width: 10em; } /* leaves room for state and last seen on a phone */
}
`;

// Plain ES2017, no template literals: this text is also hashed for the CSP.
const SCRIPT = `
'use strict';
var POLL_MS = 5000;
var lastOk = 0;
var $ = function (id) { return document.getElementById(id); };

function el(tag, className, text) {
  var node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = String(text);
  return node;
}
function fmtInt(n) { return Math.round(n).toLocaleString('en-US'); }
function fmtBytes(n) {
  var units = ['B', 'KiB', 'MiB', 'GiB'];
  var i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? fmtInt(n) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
}
function fmtDuration(seconds) {
  var s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min';
  if (s < 86400) return withRest(Math.floor(s / 3600) + ' h', Math.floor((s % 3600) / 60), ' min');
  return withRest(Math.floor(s / 86400) + ' d', Math.floor((s % 86400) / 3600), ' h');
}
function withRest(head, rest, unit) { return rest > 0 ? head + ' ' + rest + unit : head; }
function fmtClock(ms) { return new Date(ms).toTimeString().slice(0, 8); }
var DEVICE_STATES = ['active', 'asleep', 'awake', 'connecting', 'disconnected', 'lost'];
var UPLINK_STATES = ['connected', 'connecting', 'disconnected'];

function renderUplink(s) {
  var state = UPLINK_STATES.indexOf(s.uplink.state) >= 0 ? s.uplink.state : 'unknown';
  var node = $('uplink-state');
  node.textContent = state;
  node.className = 'big s-' + state;
  $('uplink-broker').textContent = s.uplink.broker ? 'broker ' + s.uplink.broker : 'no broker connected';
  $('uplink-flight').textContent = fmtInt(s.uplink.inflight) + ' / ' + fmtInt(s.uplink.window);
  $('uplink-reconnects').textContent = fmtInt(s.uplink.reconnects);
  var health = $('health');
  health.textContent = s.health.ok ? 'healthy' : 'unhealthy: ' + s.health.reason;
  health.className = 'wrap ' + (s.health.ok ? 's-ok' : 's-bad');
  document.title = state + ' \\u00b7 mqttsn-bridge';
}

function renderBacklog(s) {
  var o = s.outbox;
  $('backlog-messages').textContent = fmtInt(o.messages) + (o.messages === 1 ? ' message' : ' messages');
  $('backlog-bytes').textContent = fmtBytes(o.bytes);
  $('backlog-oldest').textContent = o.messages > 0 ? fmtDuration(o.oldestAgeSeconds) : '\\u2013';
  $('backlog-fill').textContent = (o.fill * 100).toFixed(o.fill > 0 && o.fill < 0.01 ? 2 : 0) + ' %';
  $('replay-rate').textContent = fmtInt(s.uplink.replayRate) + ' msg/s';
}

var SVG_NS = 'http://www.w3.org/2000/svg';
var W = 600, H = 160, SPAN_MS = 3600 * 1000;
function svg(tag, attrs) {
  var node = document.createElementNS(SVG_NS, tag);
  for (var k in attrs) node.setAttribute(k, String(attrs[k]));
  return node;
}
function renderChart(s) {
  var samples = s.history.samples;
  var max = 0;
  samples.forEach(function (p) { if (p.messages > max) max = p.messages; });
  var top = max > 0 ? max : 1;
  var x = function (at) { return Math.max(0, W - ((s.now - at) / SPAN_MS) * W); };
  var y = function (n) { return H - 4 - (n / top) * (H - 12); };
  var nodes = [];
  // One band per outage (consecutive samples without uplink), each sample covering the interval before it.
  var stepMs = s.history.intervalSeconds * 1000;
  var bandStart = null;
  samples.forEach(function (p, i) {
    var down = p.uplink !== 'connected';
    if (down && bandStart === null) bandStart = x(p.at - stepMs);
    var next = samples[i + 1];
    if (down && (!next || next.uplink === 'connected')) {
      nodes.push(svg('rect', { class: 'down', x: bandStart, y: 0, width: Math.max(1, x(p.at) - bandStart), height: H }));
      bandStart = null;
    }
  });
  var points = samples.map(function (p) { return x(p.at).toFixed(1) + ',' + y(p.messages).toFixed(1); });
  if (points.length > 0) {
    var first = x(samples[0].at).toFixed(1), last = x(samples[samples.length - 1].at).toFixed(1);
    nodes.push(svg('polygon', { class: 'area', points: first + ',' + H + ' ' + points.join(' ') + ' ' + last + ',' + H }));
    nodes.push(svg('polyline', { class: 'line', points: points.join(' ') }));
  }
  $('chart').replaceChildren(...nodes);
  $('chart-max').textContent = 'peak ' + fmtInt(max);
}

function renderDevices(s) {
  var rows = s.devices.shown.map(function (d) {
    var tr = el('tr');
    var id = el('td', 'id', d.clientId);
    id.title = d.clientId; // the whole id on hover when the cell cuts it short
    tr.appendChild(id);
    var state = el('td');
    var known = DEVICE_STATES.indexOf(d.state) >= 0 ? d.state : 'unknown';
    state.appendChild(el('span', 'badge st-' + known, d.state));
    tr.appendChild(state);
    tr.appendChild(el('td', 'num', fmtDuration((s.now - d.lastSeen) / 1000) + ' ago'));
    tr.appendChild(el('td', 'num', fmtInt(d.messagesIn)));
    tr.appendChild(el('td', 'num', fmtInt(d.queued)));
    tr.appendChild(el('td', '', d.address));
    return tr;
  });
  var body = $('devices').tBodies[0];
  body.replaceChildren(...rows);
  var total = s.devices.total;
  $('device-count').textContent = total > rows.length ? '(showing ' + rows.length + ' of ' + fmtInt(total) + ')' : '(' + total + ')';
  $('devices-empty').hidden = total > 0;
}

function renderRecent(s) {
  var items = s.recent.map(function (e) {
    var li = el('li');
    li.appendChild(el('span', 'when', fmtClock(e.time)));
    li.appendChild(el('span', 'lvl-' + (e.level === 'warn' ? 'warn' : 'error'), e.level));
    li.appendChild(el('span', '', e.msg + (e.error ? ': ' + e.error : '')));
    var who = [e.clientId, e.address, e.component].filter(function (v) { return v; }).join(' \\u00b7 ');
    if (who) li.appendChild(el('span', 'who', who));
    return li;
  });
  var list = $('recent');
  list.replaceChildren(...items);
  $('recent-empty').hidden = items.length > 0;
}

function renderMeta(s) {
  $('meta').textContent = 'v' + s.version + ' \\u00b7 up ' + fmtDuration(s.uptimeSeconds);
}

function renderFreshness() {
  var node = $('freshness');
  if (lastOk === 0) { node.textContent = 'loading\\u2026'; return; }
  var age = (Date.now() - lastOk) / 1000;
  node.textContent = age > POLL_MS / 1000 * 3 ? 'no answer for ' + fmtDuration(age) + ', retrying' : 'updated ' + fmtClock(lastOk);
  node.className = age > POLL_MS / 1000 * 3 ? 'stale' : 'muted';
}

function poll() {
  fetch('api/status', { cache: 'no-store' })
    .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json(); })
    .then(function (s) {
      renderMeta(s); renderUplink(s); renderBacklog(s); renderChart(s); renderDevices(s); renderRecent(s);
      lastOk = Date.now();
      document.body.dataset.loaded = 'true';
    })
    .catch(function () { /* shown by renderFreshness */ })
    .then(function () { renderFreshness(); setTimeout(poll, POLL_MS); });
}
poll();
`;

const BODY = `
<header>
  <h1>mqttsn-bridge</h1>
  <span id="meta" class="muted"></span>
  <span id="freshness" class="muted">loading…</span>
</header>
<main>
  <div class="row">
  <section class="card" aria-labelledby="h-uplink">
    <h2 id="h-uplink">Uplink</h2>
    <p id="uplink-state" class="big">…</p>
    <p id="uplink-broker" class="muted wrap"></p>
    <p id="health" class="wrap"></p>
    <dl class="facts">
      <div><dt>In flight / window</dt><dd id="uplink-flight"></dd></div>
      <div><dt>Reconnects</dt><dd id="uplink-reconnects"></dd></div>
    </dl>
  </section>
  <section class="card" aria-labelledby="h-backlog">
    <h2 id="h-backlog">Backlog</h2>
    <p id="backlog-messages" class="big">…</p>
    <dl class="facts">
      <div><dt>Size</dt><dd id="backlog-bytes"></dd></div>
      <div><dt>Oldest entry</dt><dd id="backlog-oldest"></dd></div>
      <div><dt>Quota used</dt><dd id="backlog-fill"></dd></div>
      <div><dt>Replay rate</dt><dd id="replay-rate"></dd></div>
    </dl>
  </section>
  </div>
  <section class="card chart" aria-labelledby="h-chart">
    <h2 id="h-chart">Backlog, last hour</h2>
    <svg id="chart" viewBox="0 0 600 160" preserveAspectRatio="none" role="img"
      aria-label="Messages waiting for the broker over the last hour"></svg>
    <div class="axis"><span>60 min ago</span><span id="chart-max"></span><span>now</span></div>
    <div class="legend"><span class="swatch"></span> uplink not connected</div>
  </section>
  <section class="card" aria-labelledby="h-devices">
    <h2 id="h-devices">Devices <span id="device-count"></span></h2>
    <div class="table-scroll">
      <table id="devices">
        <thead><tr><th>Client ID</th><th>State</th><th class="num">Last seen</th><th class="num">Messages</th><th class="num" title="downlink messages waiting">Queued</th><th>Address</th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <p id="devices-empty" class="muted" hidden>No devices yet.</p>
  </section>
  <section class="card" aria-labelledby="h-recent">
    <h2 id="h-recent">Recent warnings and errors</h2>
    <ol id="recent" class="recent"></ol>
    <p id="recent-empty" class="muted" hidden>None since start.</p>
  </section>
</main>
`;

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mqttsn-bridge</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`;

const scriptHash = createHash('sha256').update(SCRIPT).digest('base64');

/** Only this page's own inline script and style run; it may fetch from its own origin only. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src 'sha256-${scriptHash}'`,
  "style-src 'unsafe-inline'",
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
