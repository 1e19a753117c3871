/**
 * The status page in a real headless Chromium (Debian's package, driven by playwright-core): what it
 * shows, that device-provided text stays text, and that it fits a phone. Leaves a screenshot in
 * test/artifacts/ for a person to look at.
 *
 * Needs /usr/bin/chromium (or CHROMIUM_PATH): CI installs it and fails without it; a developer without
 * it sees the test skipped with the reason.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import { GatewayStats } from '../src/gateway/stats.js';
import { History } from '../src/observe/history.js';
import { RecentWarnings } from '../src/observe/recent.js';
import { startObserveServer, type ObserveServer } from '../src/observe/server.js';
import type { BridgeView, DeviceView } from '../src/observe/view.js';
import type { OutboxStats } from '../src/store/outbox.js';
import { newCounters } from '../src/uplink/counters.js';
import type { UplinkStats } from '../src/uplink/uplink.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ARTIFACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'artifacts');
const XSS_ID = '<img src=x onerror=alert(1)>';
const LONG_ID = 'greenhouse-north-soil-moisture-sensor-0042-with-a-very-long-client-id';

const haveChromium = existsSync(CHROMIUM);
const missing = `Chromium not found at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`;
if (haveChromium) describeStatusPage();
else if (process.env.CI)
  test('status page in a real browser', () => assert.fail(`${missing}: CI must install it`));
else test('status page in a real browser', { skip: missing }, () => undefined);

/** Devices as the gateway would list them; `lastSeen` is relative to each call so ages are exact. */
function devices(): DeviceView[] {
  const now = Date.now();
  return [
    {
      clientId: 'sensor-kitchen',
      state: 'active',
      address: '192.168.1.23:50123',
      lastSeen: now - 12_000,
      messagesIn: 1234,
      queued: 0,
    },
    {
      clientId: XSS_ID,
      state: 'active',
      address: '192.168.1.66:40000',
      lastSeen: now - 3_000,
      messagesIn: 7,
      queued: 0,
    },
    {
      clientId: LONG_ID,
      state: 'asleep',
      address: '[fd00::1]:1884/0a1b',
      lastSeen: now - 600_000,
      messagesIn: 98,
      queued: 3,
    },
    {
      clientId: 'sensor-garage',
      state: 'lost',
      address: '192.168.1.40:50500',
      lastSeen: now - 7_200_000,
      messagesIn: 3,
      queued: 0,
    },
  ];
}

function outboxStats(): OutboxStats {
  return {
    messages: 1840,
    bytes: 421_000,
    oldestReceivedAt: Date.now() - 754_000,
    dropped: { quota: 0, ttl: 0, invalid: 0 },
    rejected: 0,
    appended: 52_000,
    acked: 50_160,
    batches: 9000,
    syncBatches: 9000,
    writeErrors: 0,
  };
}

/** An hour in which the broker went away for 15 minutes: the backlog builds up, then drains. */
function fillHistory(history: History): void {
  const now = Date.now();
  for (let i = 359; i >= 0; i--) {
    const minutesAgo = (i * 10) / 60;
    const down = minutesAgo <= 40 && minutesAgo > 25;
    let messages = 0;
    if (down) messages = Math.round((40 - minutesAgo) * 400);
    else if (minutesAgo <= 25) messages = Math.max(1840, Math.round(6000 - (25 - minutesAgo) * 450));
    history.add({
      at: now - i * 10_000,
      messages,
      bytes: messages * 229,
      uplink: down ? 'disconnected' : 'connected',
    });
  }
}

interface PageProblems {
  dialogs: string[];
  errors: string[];
}

async function openStatusPage(browser: Browser, url: string, viewport: { width: number; height: number }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const problems: PageProblems = { dialogs: [], errors: [] };
  page.on('dialog', (dialog) => {
    problems.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('pageerror', (err) => problems.errors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.errors.push(msg.text());
  });
  await page.goto(url);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 5000 });
  return { page, problems, close: () => context.close() };
}

async function cellTexts(page: Page): Promise<string[][]> {
  const rows = page.locator('#devices tbody tr');
  const count = await rows.count();
  return Promise.all(Array.from({ length: count }, (_, i) => rows.nth(i).locator('td').allTextContents()));
}

/** The little of the DOM the layout check uses: the project compiles without lib "dom". */
interface BoxElement {
  id: string;
  tagName: string;
  scrollWidth: number;
  clientWidth: number;
  closest(selector: string): BoxElement | null;
  getBoundingClientRect(): { right: number };
  querySelectorAll(selector: string): ArrayLike<BoxElement>;
}

/** Runs in the page: what sticks out past the viewport's right edge. */
function measureLayout(): {
  width: number;
  pageWidth: number;
  overflowing: string[];
  scrollerRight: number;
  tableScrolls: boolean;
} {
  const { document } = globalThis as unknown as {
    document: { documentElement: BoxElement; body: BoxElement; querySelector(selector: string): BoxElement };
  };
  const width = document.documentElement.clientWidth;
  const overflowing = Array.from(document.body.querySelectorAll('*'))
    .filter((node) => !node.closest('.table-scroll'))
    .filter((node) => node.getBoundingClientRect().right > width + 0.5)
    .map((node) => node.tagName + (node.id ? '#' + node.id : ''));
  const scroller = document.querySelector('.table-scroll');
  return {
    width,
    pageWidth: document.documentElement.scrollWidth,
    overflowing,
    scrollerRight: scroller.getBoundingClientRect().right,
    tableScrolls: scroller.scrollWidth > scroller.clientWidth,
  };
}

function describeStatusPage(): void {
  describe('status page in a real browser', () => {
    let server: ObserveServer;
    let browser: Browser;
    let url: string;

    before(async () => {
      const uplink: UplinkStats = {
        ...newCounters(),
        reconnects: 1,
        state: 'connected',
        broker: 'mqtts://127.0.0.1:8883',
        inflight: 64,
        window: 128,
        maxPacketSize: null,
        stalledForMs: 0,
        disconnectedForMs: 0,
        sessionTakenOver: false,
        deadLettersKept: 0,
      };
      const view: BridgeView = {
        startedAt: Date.now() - 3 * 86_400_000 - 5 * 3_600_000,
        version: '0.1.0',
        gateway: () => new GatewayStats(),
        devices,
        outbox: outboxStats,
        uplink: () => uplink,
      };
      const history = new History(view);
      fillHistory(history);
      const recent = new RecentWarnings();
      const log = pino({}, recent); // the same tee createLogger sets up
      log.warn({ component: 'uplink', broker: uplink.broker }, 'uplink disconnected');
      log
        .child({ clientId: XSS_ID, address: '192.168.1.66:40000' })
        .warn('PUBLISH with an unknown topic id refused');
      log.error(
        { component: 'outbox', err: new Error('ENOSPC: no space left on device') },
        'outbox: batch write failed',
      );
      server = await startObserveServer({
        host: '127.0.0.1',
        port: 0,
        view,
        history,
        recent,
        log: pino({ level: 'silent' }),
        gatewayAccepting: () => true,
        outboxQuota: { maxMessages: 100_000, maxBytes: 64 * 1024 * 1024 },
        processMetrics: false,
      });
      url = `http://127.0.0.1:${server.address.port}/`;
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    });

    after(async () => {
      await browser?.close();
      await server?.close();
    });

    test('shows the uplink, backlog, chart, devices and warnings; device text stays text', async () => {
      const { page, problems, close } = await openStatusPage(browser, url, { width: 1280, height: 900 });
      try {
        await page.waitForSelector('#devices tbody tr:nth-child(4)');
        assert.equal(await page.textContent('#uplink-state'), 'connected');
        assert.match((await page.getAttribute('#uplink-state', 'class')) ?? '', /s-connected/);
        assert.equal(await page.textContent('#uplink-broker'), 'broker mqtts://127.0.0.1:8883');
        assert.equal(await page.textContent('#health'), 'healthy');
        assert.equal(await page.textContent('#backlog-messages'), '1,840 messages');
        assert.equal(await page.textContent('#backlog-oldest'), '12 min');
        assert.equal(await page.textContent('#meta'), 'v0.1.0 · up 3 d 5 h');
        assert.equal(await page.title(), 'connected · mqttsn-bridge');

        assert.deepEqual(await cellTexts(page), [
          ['sensor-garage', 'lost', '2 h ago', '3', '0', '192.168.1.40:50500'],
          [LONG_ID, 'asleep', '10 min ago', '98', '3', '[fd00::1]:1884/0a1b'],
          [XSS_ID, 'active', '3 s ago', '7', '0', '192.168.1.66:40000'],
          ['sensor-kitchen', 'active', '12 s ago', '1,234', '0', '192.168.1.23:50123'],
        ]);
        assert.equal(await page.locator('img').count(), 0, 'the client id did not become an element');
        const points = await page.getAttribute('#chart polyline', 'points');
        assert.equal(points?.split(' ').length, 360);
        assert.equal(await page.locator('#chart rect.down').count(), 1, 'the outage is one shaded band');

        const recent = await page.locator('#recent li').allTextContents();
        assert.equal(recent.length, 3);
        assert.match(recent[0]!, /error.*outbox: batch write failed: ENOSPC: no space left on device/);
        assert.ok(recent[1]!.includes(XSS_ID), 'the client id is shown literally in the warnings');

        assert.deepEqual(problems, { dialogs: [], errors: [] });
        await page.screenshot({ path: path.join(mkArtifacts(), 'status-page-desktop.png'), fullPage: true });
      } finally {
        await close();
      }
    });

    test('fits a phone: only the devices table scrolls sideways', async () => {
      const { page, problems, close } = await openStatusPage(browser, url, { width: 390, height: 844 });
      try {
        await page.waitForSelector('#devices tbody tr:nth-child(4)');
        const layout = await page.evaluate(measureLayout);
        assert.equal(layout.width, 390);
        assert.equal(layout.pageWidth, 390, 'the page itself does not scroll sideways');
        assert.deepEqual(layout.overflowing, []);
        assert.ok(layout.scrollerRight <= 390);
        assert.ok(layout.tableScrolls, 'the long client id makes the table scroll inside its container');
        assert.deepEqual(problems, { dialogs: [], errors: [] });
        await page.screenshot({ path: path.join(mkArtifacts(), 'status-page.png'), fullPage: true });
      } finally {
        await close();
      }
    });
  });
}

function mkArtifacts(): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return ARTIFACTS;
}
