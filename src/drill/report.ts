// The drill report: JSON, and one self-contained HTML page (no script, no network) with charts
// rendered to SVG on the server by vega-lite + vega: latency percentiles per 100 ms window,
// throughput and errors, the serving release, each event and release switch marked, and verdicts.
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { DrillReport } from './run.ts';

const W = 800;

type Layer = Record<string, unknown>;

function markers(r: DrillReport, yTop: boolean): Layer[] {
  const ev = r.events.map((e) => ({ t: e.at / 1000, label: e.label, ok: e.ok }));
  const sw = r.switches.filter((s) => s.from !== null).map((s) => ({ t: s.at / 1000, label: `serving ${s.to}` }));
  const fsw = (r.flag?.switches ?? []).filter((s) => s.from !== null).map((s) => ({ t: s.at / 1000, label: `${r.flag!.header}: ${s.to}` }));
  const layers: Layer[] = [];
  if (ev.length) {
    layers.push({ data: { values: ev }, mark: { type: 'rule', color: '#c0392b', strokeWidth: 2 }, encoding: { x: { field: 't', type: 'quantitative' } } });
    if (yTop) layers.push({ data: { values: ev }, mark: { type: 'text', align: 'left', dx: 3, dy: 8, color: '#c0392b', fontSize: 11, y: 0 }, encoding: { x: { field: 't', type: 'quantitative' }, text: { field: 'label' } } });
  }
  if (sw.length) {
    layers.push({ data: { values: sw }, mark: { type: 'rule', color: '#2c6fbb', strokeDash: [5, 3], strokeWidth: 2 }, encoding: { x: { field: 't', type: 'quantitative' } } });
    if (yTop) layers.push({ data: { values: sw }, mark: { type: 'text', align: 'left', dx: 3, dy: 22, color: '#2c6fbb', fontSize: 11, y: 0 }, encoding: { x: { field: 't', type: 'quantitative' }, text: { field: 'label' } } });
  }
  if (fsw.length) {
    layers.push({ data: { values: fsw }, mark: { type: 'rule', color: '#8e44ad', strokeDash: [2, 3], strokeWidth: 2 }, encoding: { x: { field: 't', type: 'quantitative' } } });
    if (yTop) layers.push({ data: { values: fsw }, mark: { type: 'text', align: 'left', dx: 3, dy: 36, color: '#8e44ad', fontSize: 11, y: 0 }, encoding: { x: { field: 't', type: 'quantitative' }, text: { field: 'label' } } });
  }
  return layers;
}

function xAxis(r: DrillReport) {
  return { field: 't', type: 'quantitative', title: 'time (s)', scale: { domain: [0, Math.ceil(r.summary.durationMs / 1000)], nice: false } };
}

export function chartSpecs(r: DrillReport): Record<string, TopLevelSpec> {
  const lat: Array<{ t: number; stat: string; ms: number }> = [];
  const thr: Array<{ t: number; kind: string; rps: number }> = [];
  const rel: Array<{ t: number; release: string; share: number }> = [];
  const fl: Array<{ t: number; value: string; share: number }> = [];
  const per = 1000 / r.windowMs;
  for (const w of r.windows) {
    const t = w.t / 1000;
    if (w.p50 !== null) {
      lat.push({ t, stat: 'p50', ms: Math.max(0.05, w.p50) }, { t, stat: 'p95', ms: Math.max(0.05, w.p95!) }, { t, stat: 'p99', ms: Math.max(0.05, w.p99!) });
    }
    thr.push({ t, kind: 'ok', rps: w.ok * per });
    for (const [k, n] of Object.entries(w.errors)) thr.push({ t, kind: k, rps: n * per });
    const total = Object.values(w.releases).reduce((a, b) => a + b, 0);
    for (const [k, n] of Object.entries(w.releases)) rel.push({ t, release: k, share: total ? n / total : 0 });
    const vs = w.variants ?? {};
    const vt = Object.values(vs).reduce((a, b) => a + b, 0);
    for (const [k, n] of Object.entries(vs)) fl.push({ t, value: k, share: vt ? n / vt : 0 });
  }
  const p95 = r.thresholds.find((t) => t.metric === 'p95');
  const base = { width: W, background: 'white', config: { font: 'sans-serif', view: { stroke: '#ddd' } } };
  const latency: TopLevelSpec = {
    ...base,
    height: 220,
    title: 'Latency per 100 ms window (log scale)',
    layer: [
      { data: { values: lat }, mark: { type: 'line', strokeWidth: 1.2, interpolate: 'step-after' }, encoding: { x: xAxis(r), y: { field: 'ms', type: 'quantitative', title: 'ms', scale: { type: 'log' } }, color: { field: 'stat', type: 'nominal', title: null, scale: { domain: ['p50', 'p95', 'p99'], range: ['#7fb3d5', '#e67e22', '#8e44ad'] } } } },
      ...(p95 ? [{ data: { values: [{ ms: p95.value }] }, mark: { type: 'rule', color: '#e67e22', strokeDash: [2, 2] }, encoding: { y: { field: 'ms', type: 'quantitative' } } }] : []),
      ...markers(r, true),
    ],
  } as unknown as TopLevelSpec;
  const errorColors = { domain: ['ok', 'refused', 'reset', 'timeout', 'non-2xx', 'other'], range: ['#27ae60', '#c0392b', '#e74c3c', '#f39c12', '#d35400', '#7f8c8d'] };
  const throughput: TopLevelSpec = {
    ...base,
    height: 180,
    title: 'Throughput and errors (requests/s, per 100 ms window)',
    layer: [
      { data: { values: thr }, mark: { type: 'area', interpolate: 'step-after', opacity: 0.85 }, encoding: { x: xAxis(r), y: { field: 'rps', type: 'quantitative', stack: 'zero', title: 'req/s' }, color: { field: 'kind', type: 'nominal', title: null, scale: errorColors }, order: { field: 'kind' } } },
      ...markers(r, false),
    ],
  } as unknown as TopLevelSpec;
  const serving: TopLevelSpec = {
    ...base,
    height: 90,
    title: 'Serving release (share of responses, from the x-release header)',
    layer: [
      { data: { values: rel }, mark: { type: 'area', interpolate: 'step-after' }, encoding: { x: xAxis(r), y: { field: 'share', type: 'quantitative', stack: 'normalize', title: null, axis: { format: '%' } }, color: { field: 'release', type: 'nominal', title: 'release' } } },
      ...markers(r, false),
    ],
  } as unknown as TopLevelSpec;
  if (!r.flag) return { latency, throughput, serving };
  const flag: TopLevelSpec = {
    ...base,
    height: 90,
    title: `Flag ${r.flag.name}: behaviour per response (share of responses, from the ${r.flag.header} header)`,
    layer: [
      { data: { values: fl }, mark: { type: 'area', interpolate: 'step-after' }, encoding: { x: xAxis(r), y: { field: 'share', type: 'quantitative', stack: 'normalize', title: null, axis: { format: '%' } }, color: { field: 'value', type: 'nominal', title: r.flag.header } } },
      ...markers(r, true),
    ],
  } as unknown as TopLevelSpec;
  return { latency, throughput, serving, flag };
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export async function renderHtml(r: DrillReport): Promise<string> {
  const specs = chartSpecs(r);
  const svgs: Record<string, string> = {};
  for (const [k, s] of Object.entries(specs)) svgs[k] = await renderSvg(s);
  const s = r.summary;
  const row = (cells: unknown[], tag = 'td') => `<tr>${cells.map((c) => `<${tag}>${esc(c)}</${tag}>`).join('')}</tr>`;
  const verdicts = r.verdicts
    .map((v) => `<tr class="${v.ok === null ? 'na' : v.ok ? 'pass' : 'fail'}"><td class="mark">${v.ok === null ? '–' : v.ok ? '✓' : '✗'}</td><td>${esc(v.name)}</td><td>${esc(v.actual)}</td></tr>`)
    .join('\n');
  const events = r.events.map((e) => row([`${(e.at / 1000).toFixed(1)} s`, e.label, e.ok ? 'ok' : 'FAILED', `${e.ms} ms`, Number.isFinite(e.recoveryMs) ? `${e.recoveryMs} ms` : 'not recovered', e.detail])).join('\n');
  const sw = r.switches.map((x) => row([`${(x.at / 1000).toFixed(1)} s`, x.from ?? '(start)', x.to])).join('\n');
  const errs = Object.entries(s.errors).map(([k, n]) => `${k}: ${n}`).join(', ') || 'none';
  const o = r.orders;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Slipway drill: ${esc(r.scenario)} — ${r.pass ? 'PASS' : 'FAIL'}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:980px;color:#222}
h1{font-size:22px;margin:0 0 4px}.sub{color:#666;margin-bottom:16px}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}
.verdict.pass{background:#27ae60}.verdict.fail{background:#c0392b}
table{border-collapse:collapse;margin:8px 0 20px;width:100%}td,th{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}
tr.pass .mark{color:#27ae60;font-weight:700}tr.fail .mark{color:#c0392b;font-weight:700}tr.fail{background:#fdecea}tr.na{color:#888}
.chart{margin:10px 0 18px}.kv td:first-child{color:#666;width:220px}
</style></head><body>
<h1>Drill <code>${esc(r.scenario)}</code> <span class="verdict ${r.pass ? 'pass' : 'fail'}" id="verdict">${r.pass ? 'PASS' : 'FAIL'}</span></h1>
<div class="sub">${esc(r.release.name)} at ${esc(r.release.origin)} (${esc(r.release.bin)}), started ${esc(r.startedAt)}</div>
<h2>Verdicts</h2>
<table id="verdicts"><tr><th></th><th>threshold / check</th><th>actual</th></tr>
${verdicts}
</table>
<h2>Charts</h2>
<p>Red lines: events. Dashed blue lines: the serving release switched.${r.flag ? ` Dotted purple lines: the behaviour of flag ${esc(r.flag.name)} switched (${esc(r.flag.header)}).` : ''}</p>
<div class="chart" id="chart-latency">${svgs.latency}</div>
<div class="chart" id="chart-throughput">${svgs.throughput}</div>
<div class="chart" id="chart-serving">${svgs.serving}</div>
${svgs.flag ? `<div class="chart" id="chart-flag">${svgs.flag}</div>` : ''}
<h2>Events</h2>
<table id="events"><tr><th>at</th><th>event</th><th>result</th><th>took</th><th>recovery</th><th>detail</th></tr>
${events || '<tr><td colspan="6">none</td></tr>'}
</table>
<h2>Release switches</h2>
<table id="switches"><tr><th>at</th><th>from</th><th>to</th></tr>
${sw}
</table>
${
  r.flag
    ? `<h2>Flag ${esc(r.flag.name)}</h2>
<table class="kv" id="flag">
${row(['turned on with', `flags set ${r.flag.name} ${r.flag.on} (before the steady load)`])}
${row(['behaviour header', r.flag.header])}
${r.events
  .filter((e) => e.flag)
  .map((e) => row([`kill switch at ${(e.at / 1000).toFixed(1)} s`, `flagged: ${e.flag!.flagged.join(', ') || 'none'}; before ${JSON.stringify(e.flag!.before)}, after ${JSON.stringify(e.flag!.after)}; off on every worker ${Number.isFinite(e.flag!.offMs) ? `${e.flag!.offMs} ms` : 'never'} after the flags file was rewritten`]))
  .join('\n')}
${row(['behaviour switches', r.flag.switches.map((x) => `${(x.at / 1000).toFixed(1)} s: ${x.from ?? '(start)'} → ${x.to}`).join('; ') || 'none'])}
${row(['restored to', r.flag.restored || '?'])}
</table>`
    : ''
}
<h2>Orders (nothing lost)</h2>
<table class="kv" id="orders">
${row(['verdict', o.ok ? '✓ ' + o.detail : '✗ ' + o.detail])}
${row(['writes (logical)', `${o.acknowledged + o.unacknowledged} (${o.acknowledged} acknowledged, ${o.unacknowledged} not)`])}
${row(['attempts incl. retries', o.attempts + o.retries])}
${row(['read back exactly once', o.verified])}
${row(['missing / duplicated / other id', `${o.missing} / ${o.duplicated} / ${o.mismatched}`])}
${row(['orders in the database (all time)', o.totalInDatabase ?? 'unknown'])}
</table>
<h2>Load</h2>
<table class="kv" id="load">
${row(['mode', r.load.mode === 'open' ? `open loop, ${r.load.rate} req/s over ${r.load.connections} keep-alive connections (latency from the scheduled time)` : `closed loop, ${r.load.connections} keep-alive connections`])}
${row(['routes (weight)', r.load.routes.map((x) => `${x.name}=${x.weight}`).join(', ')])}
${row(['requests', `${s.requests} in ${(s.durationMs / 1000).toFixed(1)} s (${s.rps.toFixed(0)} req/s), bounded by ${r.load.maxRequests} requests and ${r.load.maxDurationMs / 1000} s`])}
${row(['availability', `${s.availability.toFixed(3)}%`])}
${row(['errors', errs])}
${row(['latency p50 / p90 / p95 / p99 / max', `${s.latency.p50} / ${s.latency.p90} / ${s.latency.p95} / ${s.latency.p99} / ${s.latency.max} ms`])}
${row(['served by', Object.entries(s.releases).map(([k, n]) => `${k}: ${n}`).join(', ')])}
${Object.entries(s.byRoute).map(([k, v]) => row([`route ${k}`, `${v.count} requests, ${v.ok} ok`])).join('\n')}
</table>
<p class="sub">Generated by slipway drill. The full per-window data is in the JSON report next to this file.</p>
</body></html>
`;
}

/**
 * Make the report directory and check that it takes files, before a drill touches the release:
 * a drill is not undone (a worker was killed, a release switched), so its report must not be lost
 * at the end. Throws one line naming the directory.
 */
export function prepareReportDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new Error(`--report-dir: cannot write reports to ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Write DIR/drill-report.json and DIR/drill-report.html; returns their paths. */
export async function writeReport(r: DrillReport, dir: string, base = 'drill-report'): Promise<{ json: string; html: string }> {
  mkdirSync(dir, { recursive: true });
  const json = path.join(dir, `${base}.json`);
  const html = path.join(dir, `${base}.html`);
  writeFileSync(json, JSON.stringify(r, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2));
  writeFileSync(html, await renderHtml(r));
  return { json, html };
}
