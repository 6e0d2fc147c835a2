// Drills against real releases: an upgrade that holds its SLOs (exit 0, orders read back, HTML
// report rendered in real headless Chromium), a latency SLO that fails (exit 99, ✗), a kill with
// restarts disabled (exit 99: availability and recovery ✗), and usage errors (exit 2).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { alive, buildOrders, childPids, deploy, freePort, onCleanup, runCleanups, slipway, tempDir, type Deployed } from './helpers/release.ts';
import type { BuildResult } from '../src/build/index.ts';
import { parseSlo, resolveSlos, SloError } from '../src/drill/slo.ts';
import { parseMix } from '../src/drill/loadgen.ts';
import { recovery, switches, type Window } from '../src/drill/analyze.ts';

after(runCleanups);

interface JsonReport {
  pass: boolean;
  verdicts: Array<{ kind: string; name: string; actual: string; ok: boolean | null }>;
  summary: { requests: number; ok: number; errors: Record<string, number>; availability: number; releases: Record<string, number>; byRoute: Record<string, { count: number }> };
  events: Array<{ kind: string; ok: boolean; recoveryMs: number | null }>;
  switches: Array<{ from: string | null; to: string }>;
  orders: { acknowledged: number; verified: number; missing: number; duplicated: number; ok: boolean };
  report: { json: string; html: string };
  load: { stoppedBy: string };
  flag?: { name: string; header: string; switches: Array<{ from: string | null; to: string }>; restored: string };
}

const QUICK = ['--steady', '2s', '--after', '3s', '--rate', '150', '--max-duration', '90s'];

describe('slipway drill', () => {
  let v1: BuildResult;
  let v2: BuildResult;
  let rel: Deployed;
  let reports: string;

  before(async () => {
    v1 = await buildOrders({ version: '1.0.0' });
    v2 = await buildOrders({ version: '1.1.0' });
    reports = tempDir('slipway-drill-reports-');
    rel = await deploy(v1, { PORT: String(await freePort()), SLIPWAY_WORKERS: '2', SLIPWAY_READY_TIMEOUT: '10s', SLOW_MS: '400' });
    const d = await rel.daemon();
    assert.equal(d.code, 0, d.stderr);
  });

  test('usage errors: one line and exit 2', async () => {
    const notADir = path.join(reports, 'a-file');
    writeFileSync(notADir, '');
    const bad = [
      ['drill', 'explode', '--release', rel.bin],
      ['drill', 'kill', '--release', rel.bin, '--slo', 'p95<<3'],
      ['drill', 'kill', '--release', rel.bin, '--slo', 'latency<3ms'],
      ['drill', 'kill', '--release', rel.bin, '--rate', 'fast'],
      ['drill', 'kill', '--release', rel.bin, '--mix', 'hello=0'],
      ['drill', 'upgrade', '--release', rel.bin],
      ['drill', 'kill'],
      ['drill', 'kill', '--release', '/nonexistent/bin/orders'],
      ['drill', 'kill', '--release', rel.bin, '--kill-target', 'everything'],
      ['drill', 'flag', '--release', rel.bin],
      ['drill', 'flag', '--release', rel.bin, '--flag', 'new_pricing', '--flag-on', 'sometimes'],
      // A report directory that cannot take files: refused before the drill touches the release.
      ['drill', 'kill', '--release', rel.bin, '--report-dir', path.join(notADir, 'reports')],
      ['demo', '--report-dir', path.join(notADir, 'reports')],
    ];
    const restarts = async () => (JSON.parse((await rel.run(['status', '--json'])).stdout) as { restarts: number }).restarts;
    const restartsBefore = await restarts();
    const [help, demoHelp, version, ...results] = await Promise.all([slipway(['drill', '--help']), slipway(['demo', '--help']), slipway(['--version']), ...bad.map((args) => slipway(args))]);
    bad.forEach((args, i) => {
      const r = results[i]!;
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: ${r.stderr}`);
    });
    assert.equal(help!.code, 0);
    assert.match(help!.stdout, /--slo/);
    assert.equal(demoHelp!.code, 0);
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.deepEqual([version!.code, version!.stdout], [0, `${pkg.version}\n`]);
    assert.match(results[bad.length - 2]!.stderr, /^slipway drill: --report-dir: cannot write reports to .*a-file\/reports \(ENOTDIR\)\n$/);
    assert.equal(await restarts(), restartsBefore, 'no worker was killed');
  });

  test('SLO strings parse k6-style; defaults come from the seed SLO', () => {
    assert.deepEqual(parseSlo('p95<150ms'), { source: 'p95<150ms', metric: 'p95', op: '<', value: 150, unit: 'ms' });
    assert.equal(parseSlo('recovery<2s').value, 2000);
    assert.equal(parseSlo('rollback < 2m').value, 120_000);
    assert.equal(parseSlo('availability>=99.9%').value, 99.9);
    assert.throws(() => parseSlo('availability>=101%'), SloError);
    assert.throws(() => parseSlo('p95<3kg'), SloError);
    const d = resolveSlos(['p95<50ms']);
    assert.deepEqual(d.map((t) => t.source).sort(), ['availability>=99.9%', 'p95<50ms', 'recovery<5s', 'rollback<2m']);
    assert.equal(parseMix('hello=2,/slow').length, 2);
    assert.throws(() => parseMix('nope=1'));
  });

  test('recovery and release switches come from the 100 ms windows', () => {
    const w = (t: number, ok: number, count: number, release: string | null): Window => ({ t, ok, count, errors: {}, p50: 1, p95: 1, p99: 1, max: 1, releases: release ? { [release]: count } : {}, release });
    const ws = Array.from({ length: 50 }, (_, i) => w(i * 100, 10, i >= 10 && i < 13 ? 12 : 10, i < 20 ? 'a' : i === 21 ? 'a' : 'b'));
    assert.equal(recovery(ws, 1000, 5000), 300); // errors in 1000..1300
    assert.equal(recovery(ws, 2000, 5000), 0);
    assert.equal(recovery(ws, 1000, 1500), Infinity); // still failing near the end
    const sw = switches(ws);
    assert.deepEqual(sw.map((s) => [s.from, s.to]), [[null, 'a'], ['a', 'b']]);
  });

  test('upgrade drill under mixed load holds its SLOs, loses no order, and renders its report', async () => {
    // A generous latency threshold: this test is about behaviour (the machine is shared and noisy).
    const r = await slipway(['drill', 'upgrade', '--release', rel.bin, '--install', v2.tarball, '--to', '1.1.0', '--slo', 'p95<2s', '--report-dir', reports, '--json', ...QUICK]);
    assert.equal(r.stderr, '', 'quiet with --json');
    const rep = JSON.parse(r.stdout) as JsonReport;
    assert.equal(r.code, 0, JSON.stringify({ verdicts: rep.verdicts, errors: rep.summary.errors, events: rep.events }, null, 1));
    assert.equal(rep.pass, true);
    assert.equal(rep.load.stoppedBy, 'stop');
    // Mixed routes, reads and writes, and both releases served.
    for (const route of ['hello', 'create', 'get', 'list']) assert.ok((rep.summary.byRoute[route]?.count ?? 0) > 0, route);
    assert.ok(rep.summary.releases['1.0.0']! > 0 && rep.summary.releases['1.1.0']! > 0);
    assert.deepEqual(rep.switches.filter((s) => s.from).map((s) => [s.from, s.to]), [['1.0.0', '1.1.0']]);
    // Nothing lost: every acknowledged order read back exactly once.
    assert.ok(rep.orders.acknowledged > 20);
    assert.equal(rep.orders.verified, rep.orders.acknowledged);
    assert.equal(rep.orders.missing + rep.orders.duplicated, 0);
    assert.ok(rep.verdicts.some((v) => v.name.startsWith('orders') && v.ok === true));
    // Per-window data in the JSON report.
    const full = JSON.parse(readFileSync(rep.report.json, 'utf8')) as { windows: Window[] };
    assert.ok(full.windows.length > 40);
    assert.ok(full.windows.some((w) => w.p95 !== null && w.release === '1.1.0'));

    // The HTML report in real headless Chromium: self-contained, charts rendered, events marked.
    assert.ok(existsSync(rep.report.html));
    const html = readFileSync(rep.report.html, 'utf8');
    assert.ok(!/<script|(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i.test(html), 'self-contained: no script, nothing loaded from the network');
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
      const requests: string[] = [];
      page.on('request', (req) => {
        if (!req.url().startsWith('file:') && !req.url().startsWith('data:')) requests.push(req.url());
      });
      await page.goto('file://' + rep.report.html);
      // (A string, evaluated in the page: the test's TypeScript has no DOM types.)
      const charts = (await page.evaluate(`['latency', 'throughput', 'serving'].map((id) => {
          const svg = document.querySelector('#chart-' + id + ' svg');
          const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
          return { id, w: box.width, h: box.height, paths: svg ? svg.querySelectorAll('path').length : 0, text: svg ? svg.textContent : '' };
        })`)) as Array<{ id: string; w: number; h: number; paths: number; text: string }>;
      for (const c of charts) {
        assert.ok(c.w > 300 && c.h > 80, `${c.id} has a size: ${c.w}x${c.h}`);
        assert.ok(c.paths > 5, `${c.id} has marks`);
      }
      assert.match(charts[0]!.text, /upgrade 1\.0\.0 → 1\.1\.0/);
      assert.match(charts[0]!.text, /serving 1\.1\.0/);
      const verdict = await page.textContent('#verdict');
      assert.equal(verdict?.trim(), 'PASS');
      const rows = await page.$$eval('#verdicts tr.pass', (trs) => trs.length);
      assert.ok(rows >= 4);
      await page.screenshot({ path: path.join(reports, 'upgrade.png'), fullPage: true });
      assert.deepEqual(requests, [], 'no network');
    } finally {
      await browser.close();
    }
  });

  test('a drill can fail: a route that sleeps past the p95 SLO exits 99 with ✗', async () => {
    const r = await slipway(['drill', 'rollback', '--release', rel.bin, '--rollback-to', '1.0.0', '--mix', 'hello=1,/slow=1', '--slo', 'p95<150ms', '--report-dir', reports, ...QUICK]);
    assert.equal(r.code, 99, r.stdout + r.stderr);
    assert.match(r.stdout, /✗ p95<150ms/);
    assert.match(r.stdout, /✓ rollback 1\.1\.0 → 1\.0\.0/);
    assert.match(r.stdout, /FAIL/);
    assert.match(r.stderr, /\[drill\].*requests.*p95/, 'progress on stderr');
  });

  test('flag drill: the kill switch of new_pricing applies on every worker within 1 s, is marked in the report, and the flag is restored', async () => {
    // A previous state to restore: on for one customer only.
    const pre = await rel.run(['flags', 'set', 'new_pricing', '--for', 'cust-7']);
    assert.equal(pre.code, 0, pre.stderr);
    const r = await slipway(['drill', 'flag', '--release', rel.bin, '--flag', 'new_pricing', '--slo', 'p95<2s', '--report-dir', reports, '--json', ...QUICK]);
    const rep = JSON.parse(r.stdout) as JsonReport & { events: Array<{ kind: string; ok: boolean; flag: { flagged: string[]; offMs: number; before: Record<string, number>; after: Record<string, number> } }> };
    assert.equal(r.code, 0, JSON.stringify(rep.verdicts, null, 1));
    const v = (name: string) => rep.verdicts.find((x) => x.name.startsWith(name));
    assert.equal(v('flag_off<1s')?.ok, true, JSON.stringify(rep.verdicts));
    assert.equal(v('kill switch new_pricing applied on every worker')?.ok, true);
    assert.deepEqual(rep.events[0]!.flag.flagged, ['new']);
    assert.ok(rep.events[0]!.flag.after.classic! > 0 && !rep.events[0]!.flag.after.new);
    assert.ok(rep.events[0]!.flag.offMs < 1000);
    // Like a release switch: the behaviour switches from new to classic (and for good).
    assert.deepEqual(rep.flag!.switches.slice(-1).map((s) => [s.from, s.to]), [['new', 'classic']]);
    // The report marks the event and the behaviour switch (SVG rendered on the server, in the HTML).
    const html = readFileSync(rep.report.html, 'utf8');
    assert.match(html, /id="chart-flag"/);
    assert.match(html, /kill switch new_pricing/);
    assert.match(html, /x-pricing: classic/);
    // Restored exactly: on for cust-7 only, as before the drill.
    const after = await rel.run(['flags', 'list', '--json']);
    const rule = (JSON.parse(after.stdout) as Record<string, { state: string; percent?: number; for?: string[] }>).new_pricing!;
    assert.deepEqual([rule.state, rule.percent, rule.for], ['percent', 0, ['cust-7']]);
    assert.equal(rep.flag!.restored, '0% (+ for cust-7)');
  });

  test('flag drill fails (exit 99) when the header never changes: a flag the app does not read', async () => {
    const r = await slipway(['drill', 'flag', '--release', rel.bin, '--flag', 'unused_flag', '--slo', 'p95<2s', '--report-dir', reports, ...QUICK]);
    assert.equal(r.code, 99, r.stdout + r.stderr);
    assert.match(r.stdout, /✗ flag_off<1s\s+never/);
    assert.match(r.stdout, /✗ kill switch unused_flag applied on every worker.*the header never changed/);
    const after = await rel.run(['flags', 'list', '--json']);
    assert.ok(!('unused_flag' in (JSON.parse(after.stdout) as object)), 'an unset flag is unset again');
  });

  test('kill with restarts disabled: the release goes down, availability and recovery fail (exit 99)', async () => {
    const fragile = await deploy(v1, { PORT: String(await freePort()), SLIPWAY_WORKERS: '2', SLIPWAY_MAX_RESTARTS: '0' });
    const d = await fragile.daemon();
    assert.equal(d.code, 0, d.stderr);
    const r = await slipway(['drill', 'kill', '--release', fragile.bin, '--report-dir', reports, '--json', ...QUICK]);
    assert.equal(r.code, 99, r.stderr);
    const rep = JSON.parse(r.stdout) as JsonReport;
    const v = (name: string) => rep.verdicts.find((x) => x.name.startsWith(name));
    assert.equal(v('availability')?.ok, false);
    assert.equal(v('recovery')?.ok, false);
    assert.equal(v('kill worker')?.ok, false);
    assert.ok((rep.summary.errors.refused ?? 0) > 0, JSON.stringify(rep.summary.errors));
    assert.equal(rep.events[0]!.recoveryMs, null, 'never recovered (Infinity in JSON is null)');
  });

  test('kill the whole release: restarted as systemd would, the same port serves again', async () => {
    const whole = await deploy(v1, { PORT: String(await freePort()), SLIPWAY_WORKERS: '1' });
    const d = await whole.daemon();
    assert.equal(d.code, 0, d.stderr);
    const before = whole.info()!;
    // The drill starts a new supervisor: stop it (and its workers) at the end, whatever happens.
    onCleanup(async () => {
      const info = whole.info();
      if (!info || info.pid === before.pid || !alive(info.pid)) return;
      const kids = childPids(info.pid);
      await whole.run(['stop'], {}, 60_000);
      for (const p of [info.pid, ...kids]) if (alive(p)) process.kill(p, 'SIGKILL');
    });
    const r = await slipway(['drill', 'kill', '--kill-target', 'release', '--release', whole.bin, '--slo', 'availability>=0%', '--slo', 'recovery<60s', '--slo', 'p95<60s', '--report-dir', reports, '--json', ...QUICK]);
    const rep = JSON.parse(r.stdout) as JsonReport;
    assert.equal(r.code, 0, JSON.stringify(rep.verdicts, null, 1));
    assert.equal(rep.events[0]!.ok, true);
    const after = whole.info()!;
    assert.notEqual(after.pid, before.pid, 'a new supervisor');
    assert.equal(after.port, before.port, 'on the same port');
    assert.ok(!alive(before.pid));
    const res = await fetch(whole.url('/hello'));
    assert.equal(res.status, 200);
    await res.text();
  });
});
