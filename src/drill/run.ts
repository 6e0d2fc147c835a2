// A drill: steady load, the event(s), recovery, steady load again; then the orders are read back
// and counted, and every SLO threshold and expectation becomes a ✓/✗ verdict.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { Pool } from 'undici';
import { flagsPath, readFlags, updateFlags, type FlagRule } from '../runtime/flags.ts';
import { lastVariantAt, recovery, releasesBetween, summarize, switches, variantsBetween, variantSwitches, windows, type Summary, type Switch, type Window } from './analyze.ts';
import { startLoad, type LoadResult, type Route, type RunningLoad } from './loadgen.ts';
import { formatValue, holds, METRICS, type Threshold } from './slo.ts';
import { alive, parentPid, type Target } from './target.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export const SCENARIOS = ['kill', 'upgrade', 'rollback', 'bad-release', 'flag', 'all'] as const;
export type Scenario = (typeof SCENARIOS)[number];
export type EventKind = 'kill' | 'upgrade' | 'rollback' | 'bad-release' | 'flag';

export interface EventSpec {
  kind: EventKind;
  version?: string;
  killTarget?: 'worker' | 'release';
  /** kind "flag": the flag whose kill switch (`bin/APP flags set NAME off`) is the event. */
  flag?: string;
}

/** A feature flag under drill: on (or a percentage) from before the steady load until its kill switch. */
export interface FlagDrill {
  name: string;
  /** What `bin/APP flags set NAME VALUE` turns it on with before the load: "on" or a percentage. */
  on: string;
  /** The response header that tells which behaviour served a response (e.g. x-pricing). */
  header: string;
}

export interface FlagResult {
  name: string;
  header: string;
  on: string;
  /** Header values seen while the flag was on that are gone after the kill switch: the flagged behaviour. */
  flagged: string[];
  before: Record<string, number>;
  after: Record<string, number>;
  /** ms since t0: when var/flags.json was rewritten by the kill switch. */
  writtenAt: number;
  /** Completion time (ms since t0) of the last response with the flagged behaviour, if any after the write. */
  lastFlaggedAt: number | null;
  /** Time from the write until no response shows the flagged behaviour; Infinity when it never stops. */
  offMs: number;
}

export interface DrillOptions {
  target: Target;
  scenario: string;
  events: EventSpec[];
  /** Tarballs to install (bin/APP install) before the load starts. */
  install?: string[];
  mode: 'closed' | 'open';
  connections: number;
  rate: number;
  routes: Route[];
  steadyMs: number;
  afterMs: number;
  maxRequests: number;
  maxDurationMs: number;
  timeoutMs: number;
  slos: Threshold[];
  /** Required when an event is a flag kill switch. */
  flag?: FlagDrill;
  progress?: (line: string) => void;
}

export interface EventRecord {
  kind: EventKind;
  label: string;
  /** ms since the load's t0. */
  at: number;
  endAt: number;
  ms: number;
  ok: boolean;
  expectation: string;
  detail: string;
  servingBefore: string | null;
  expectedServing: string | null;
  servingAfter: Record<string, number>;
  recoveryMs: number;
  flag?: FlagResult;
}

export interface Verdict {
  kind: 'slo' | 'check';
  name: string;
  actual: string;
  /** null: not applicable in this drill (e.g. rollback time without a rollback). */
  ok: boolean | null;
}

export interface OrdersCheck {
  acknowledged: number;
  unacknowledged: number;
  attempts: number;
  retries: number;
  verified: number;
  missing: number;
  duplicated: number;
  mismatched: number;
  unreachable: number;
  unackedPresent: number;
  totalInDatabase: number | null;
  ok: boolean;
  detail: string;
}

export interface DrillReport {
  tool: 'slipway drill';
  scenario: string;
  release: { bin: string; name: string; origin: string; versionBefore: string };
  startedAt: string;
  load: { mode: 'closed' | 'open'; connections: number; rate: number | null; routes: Array<{ name: string; weight: number }>; maxRequests: number; maxDurationMs: number; stoppedBy: string };
  summary: Summary;
  windowMs: number;
  windows: Window[];
  switches: Switch[];
  /** The flag under drill, its header, its switches between behaviours (like release switches) and its restore. */
  flag?: { name: string; header: string; on: string; switches: Switch[]; restored: string };
  events: EventRecord[];
  orders: OrdersCheck;
  thresholds: Threshold[];
  verdicts: Verdict[];
  pass: boolean;
}

export class DrillError extends Error {}


export async function runDrill(o: DrillOptions): Promise<DrillReport> {
  const say = o.progress ?? (() => undefined);
  const { target } = o;
  const st0 = await target.status();
  if (!st0) throw new DrillError(`${target.bin} is not running (start it with: ${target.bin} daemon)`);
  const origin = target.origin(st0);
  for (const tarball of o.install ?? []) {
    say(`installing ${path.basename(tarball)}`);
    const r = await target.run(['install', path.resolve(tarball)]);
    if (r.code !== 0 && !/already installed/i.test(r.stderr)) throw new DrillError(`install ${tarball} failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
  }
  for (const e of o.events) {
    if ((e.kind === 'upgrade' || e.kind === 'bad-release' || (e.kind === 'rollback' && e.version)) && !existsSync(path.join(target.root, 'releases', e.version!))) {
      throw new DrillError(`${e.kind}: release ${e.version} is not installed in ${target.root} (pass --install TARBALL)`);
    }
  }

  const flagEvents = o.events.filter((e) => e.kind === 'flag');
  if (flagEvents.length && !o.flag) throw new DrillError('flag: --flag NAME is required');
  const flagFile = flagsPath(varDir(target));
  let flagPrev: { rule: FlagRule | undefined } | undefined;
  if (o.flag && flagEvents.length) {
    flagPrev = { rule: readFlags(flagFile).flags[o.flag.name] };
    say(`flag ${o.flag.name}: ${o.flag.on} (was ${flagPrev.rule ? describeRule(flagPrev.rule) : 'unset'}); responses tell the behaviour by ${o.flag.header}`);
    const r = await target.run(['flags', 'set', o.flag.name, o.flag.on]);
    if (r.code !== 0) throw new DrillError(`flags set ${o.flag.name} ${o.flag.on} failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
    // Workers poll var/flags.json every 250 ms: let them all apply it, so the steady load runs with the flag on.
    await sleep(750);
  }
  let restored = '';
  let report: DrillReport | undefined;
  try {
    report = await drill(o, target, st0, origin, say);
    return report;
  } finally {
    if (o.flag && flagPrev) {
      // Back to exactly what it was (the kill switch left it off; it may have been unset, or on for some keys).
      updateFlags(flagFile, (data) => {
        if (flagPrev.rule) data.flags[o.flag!.name] = flagPrev.rule;
        else delete data.flags[o.flag!.name];
      });
      restored = flagPrev.rule ? describeRule(flagPrev.rule) : 'unset (its default)';
      say(`flag ${o.flag.name} restored: ${restored}`);
    }
    if (report?.flag) report.flag.restored = restored;
  }
}

function describeRule(r: FlagRule): string {
  return (r.state === 'percent' ? `${r.percent ?? 0}%` : r.state) + (r.for?.length ? ` (+ for ${r.for.join(',')})` : '');
}

/** var/ of the release (RELEASE_VAR overrides it, as for the release itself). */
function varDir(target: Target): string {
  return target.env.RELEASE_VAR ?? process.env.RELEASE_VAR ?? path.join(target.root, 'var');
}

async function drill(o: DrillOptions, target: Target, st0: NonNullable<Awaited<ReturnType<Target['status']>>>, origin: string, say: (l: string) => void): Promise<DrillReport> {
  const startedAt = new Date().toISOString();
  const load = startLoad({ origin, mode: o.mode, connections: o.connections, rate: o.rate, routes: o.routes, maxRequests: o.maxRequests, maxDurationMs: o.maxDurationMs, timeoutMs: o.timeoutMs, variantHeader: o.flag?.header });
  void load.done.then(() => finished.add(load));
  let phase = 'steady';
  const ticker = progressTicker(load, () => phase, say);
  const events: EventRecord[] = [];
  let serving = st0.version;
  try {
    await waitOrEnd(load, o.steadyMs);
    for (const spec of o.events) {
      if (ended(load)) break;
      phase = spec.kind === 'kill' ? `kill ${spec.killTarget ?? 'worker'}` : spec.kind === 'flag' ? `kill switch ${spec.flag}` : `${spec.kind}${spec.version ? ` ${spec.version}` : ''}`;
      const ev = spec.kind === 'flag' ? await runFlagOff(target, spec.flag!, load, serving, varDir(target)) : await runEvent(target, spec, load, serving);
      events.push(ev);
      say(`${ev.ok ? '✓' : '✗'} ${ev.label}: ${ev.detail}`);
      if (ev.expectedServing) serving = ev.expectedServing;
      phase = `steady after ${spec.kind}`;
      await waitOrEnd(load, o.afterMs);
    }
  } finally {
    load.stop();
    clearInterval(ticker);
  }
  const result = await load.done;
  phase = 'verify';
  say(`load stopped (${result.timeline.n} requests); reading back ${result.ledger.acked.size} acknowledged orders`);

  const ws = windows(result);
  const ends = [...events.map((e) => e.at), result.durationMs];
  events.forEach((e, i) => {
    e.recoveryMs = recovery(ws, e.at, ends[i + 1]!);
    e.servingAfter = releasesBetween(result, Math.min(e.endAt + 500, ends[i + 1]!), ends[i + 1]!);
    if (e.kind === 'flag' && o.flag) judgeFlag(e, o.flag, result, Math.min(1000, o.steadyMs / 2), events[i - 1]?.endAt ?? 0, ends[i + 1]!);
  });
  const orders = await verifyOrders(origin, result, o.timeoutMs);
  const summary = summarize(result);
  const verdicts = judge(o.slos, summary, events, orders, result);
  const pass = verdicts.every((v) => v.ok !== false);
  return {
    tool: 'slipway drill',
    scenario: o.scenario,
    release: { bin: target.bin, name: target.name, origin, versionBefore: st0.version },
    startedAt,
    load: { mode: o.mode, connections: o.connections, rate: o.mode === 'open' ? o.rate : null, routes: o.routes.map((r) => ({ name: r.name, weight: r.weight })), maxRequests: o.maxRequests, maxDurationMs: o.maxDurationMs, stoppedBy: result.stoppedBy },
    summary,
    windowMs: 100,
    windows: ws,
    switches: switches(ws),
    ...(o.flag && o.events.some((e) => e.kind === 'flag') ? { flag: { name: o.flag.name, header: o.flag.header, on: o.flag.on, switches: variantSwitches(ws), restored: '' } } : {}),
    events,
    orders,
    thresholds: o.slos,
    verdicts,
    pass,
  };
}

const finished = new WeakSet<RunningLoad>();
function ended(load: RunningLoad): boolean {
  return finished.has(load);
}

async function waitOrEnd(load: RunningLoad, ms: number): Promise<void> {
  await Promise.race([sleep(ms), load.done]);
}

function progressTicker(load: RunningLoad, phase: () => string, say: (l: string) => void): NodeJS.Timeout {
  let from = 0;
  return setInterval(() => {
    const tl = load.timeline;
    const to = tl.n;
    const lat: number[] = [];
    let errs = 0;
    let rel = '';
    for (let i = from; i < to; i++) {
      lat.push(tl.latency[i]!);
      if (tl.outcome[i] !== 0) errs++;
      if (tl.release[i]! >= 0) rel = tl.releases[tl.release[i]!]!;
    }
    from = to;
    lat.sort((a, b) => a - b);
    const p95 = lat.length ? lat[Math.min(lat.length - 1, Math.ceil(0.95 * lat.length) - 1)]! : NaN;
    let total = 0;
    for (let i = 0; i < to; i++) if (tl.outcome[i] !== 0) total++;
    say(`${(load.now() / 1000).toFixed(1).padStart(5)}s  ${phase().padEnd(22)} requests ${String(to).padStart(7)}  errors ${total}${errs ? ` (+${errs})` : ''}  p95(1s) ${Number.isNaN(p95) ? '-' : p95.toFixed(1) + ' ms'}  serving ${rel || '-'}`);
  }, 1000).unref();
}

async function runEvent(target: Target, spec: EventSpec, load: RunningLoad, servingBefore: string): Promise<EventRecord> {
  const base = { kind: spec.kind, servingBefore, servingAfter: {}, recoveryMs: 0 };
  if (spec.kind === 'kill') {
    const st = await target.status();
    if (!st) {
      const at = load.now();
      return { ...base, label: 'kill', at, endAt: at, ms: 0, ok: false, expectation: 'the release is running', detail: 'release not running', expectedServing: null };
    }
    const ready = st.workers.filter((w) => w.state === 'ready' && w.pid);
    if (spec.killTarget === 'release') {
      const workers = st.workers.map((w) => w.pid).filter((p): p is number => !!p);
      const at = load.now();
      process.kill(st.pid, 'SIGKILL');
      // As systemd's Restart=always would: wait for the old workers to let go of the port, start again.
      const deadline = Date.now() + 60_000;
      while (workers.some(alive) && Date.now() < deadline) await sleep(50);
      // Same address and worker count as before (the rest comes from the release and the environment).
      const r = await target.run(['daemon'], 300_000, { HOST: st.listen.host, PORT: String(st.listen.port), SLIPWAY_WORKERS: String(Math.max(1, st.workers.length)) });
      const endAt = load.now();
      return {
        ...base,
        label: 'kill release',
        at,
        endAt,
        ms: Math.round(endAt - at),
        ok: r.code === 0,
        expectation: 'the release comes back (restarted like systemd Restart=always)',
        detail: r.code === 0 ? `supervisor ${st.pid} SIGKILLed; restarted and ready in ${Math.round(endAt - at)} ms` : `restart failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}`,
        expectedServing: servingBefore,
      };
    }
    const victim = ready[ready.length - 1] ?? st.workers.find((w) => w.pid);
    if (!victim?.pid || parentPid(victim.pid) !== st.pid) {
      const at = load.now();
      return { ...base, label: 'kill worker', at, endAt: at, ms: 0, ok: false, expectation: 'a worker of this release to kill', detail: 'no worker found', expectedServing: null };
    }
    const want = ready.length;
    const at = load.now();
    process.kill(victim.pid, 'SIGKILL');
    // Wait (bounded) until as many workers are ready as before, none of them the victim.
    let back: number | undefined;
    let down = false;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      await sleep(100);
      const s = await target.status();
      if (!s) {
        if (!alive(st.pid)) {
          down = true;
          break;
        }
        continue;
      }
      if (s.workers.filter((w) => w.state === 'ready' && w.pid !== victim.pid).length >= want) {
        back = load.now();
        break;
      }
    }
    const endAt = back ?? load.now();
    return {
      ...base,
      label: `kill worker ${victim.pid}`,
      at,
      endAt,
      ms: Math.round(endAt - at),
      ok: back !== undefined,
      expectation: `worker restarted, ${want} ready again`,
      detail: back !== undefined ? `SIGKILL worker ${victim.pid}; ${want}/${want} ready again after ${Math.round(back - at)} ms` : down ? `SIGKILL worker ${victim.pid}; the supervisor exited (restarts disabled or exhausted): release down` : `SIGKILL worker ${victim.pid}; not back within 30 s`,
      expectedServing: back !== undefined ? servingBefore : null,
    };
  }
  const args = spec.kind === 'rollback' ? ['rollback', ...(spec.version ? [spec.version] : []), '--json'] : ['upgrade', spec.version!, '--json'];
  const at = load.now();
  const r = await target.run(args);
  const endAt = load.now();
  const ms = Math.round(endAt - at);
  const why = (r.stderr || r.stdout).trim().split('\n').filter(Boolean).pop() ?? `exit ${r.code}`;
  if (spec.kind === 'bad-release') {
    return {
      ...base,
      label: `bad release ${spec.version}`,
      at,
      endAt,
      ms,
      ok: r.code !== 0,
      expectation: `upgrade to ${spec.version} refused; ${servingBefore} keeps serving`,
      detail: r.code !== 0 ? `refused in ${ms} ms: ${why}` : `upgrade to ${spec.version} was accepted (exit 0)`,
      expectedServing: servingBefore,
    };
  }
  let to = spec.version ?? null;
  if (r.code === 0) {
    try {
      to = (JSON.parse(r.stdout) as { to?: string }).to ?? to;
    } catch {
      // keep
    }
  }
  const label = spec.kind === 'upgrade' ? `upgrade ${servingBefore} → ${spec.version}` : `rollback ${servingBefore} → ${to ?? '?'}`;
  return {
    ...base,
    label,
    at,
    endAt,
    ms,
    ok: r.code === 0,
    expectation: `${spec.kind} succeeds and ${to ?? 'the target'} serves`,
    detail: r.code === 0 ? `${spec.kind} took ${ms} ms` : `${spec.kind} failed (exit ${r.code}): ${why}`,
    expectedServing: r.code === 0 ? to : servingBefore,
  };
}

/** The kill switch: `bin/APP flags set NAME off`, as an operator would. Judged later, from the responses (judgeFlag). */
async function runFlagOff(target: Target, name: string, load: RunningLoad, servingBefore: string, vardir: string): Promise<EventRecord> {
  const at = load.now();
  const r = await target.run(['flags', 'set', name, 'off']);
  const endAt = load.now();
  // When var/flags.json was rewritten (the workers' poll reacts to that, not to the command's exit).
  let writtenAt = endAt;
  try {
    writtenAt = Math.min(endAt, Math.max(at, statSync(flagsPath(vardir)).mtimeMs - load.t0Epoch));
  } catch {
    // keep endAt
  }
  const ms = Math.round(endAt - at);
  return {
    kind: 'flag',
    label: `kill switch ${name}`,
    at,
    endAt,
    ms,
    ok: r.code === 0,
    expectation: `after flags set ${name} off, no response shows the flagged behaviour any more`,
    detail: r.code === 0 ? `flags set ${name} off took ${ms} ms` : `flags set ${name} off failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').pop()}`,
    servingBefore,
    expectedServing: servingBefore,
    servingAfter: {},
    recoveryMs: 0,
    flag: { name, header: '', on: '', flagged: [], before: {}, after: {}, writtenAt: Math.round(writtenAt), lastFlaggedAt: null, offMs: Infinity },
  };
}

/**
 * Which behaviour served each response, before and after the kill switch: the header values seen
 * while the flag was on (after `grace`, for the workers' poll) that are gone in the last second
 * before `until` are the flagged behaviour; the kill switch took from the flags file's rewrite
 * until the last response that still showed it.
 */
function judgeFlag(e: EventRecord, flag: FlagDrill, load: LoadResult, grace: number, _prevEnd: number, until: number): void {
  const f = e.flag!;
  f.header = flag.header;
  f.on = flag.on;
  f.before = variantsBetween(load, grace, e.at);
  f.after = variantsBetween(load, Math.max(e.endAt, until - 1000), until);
  const b = Object.keys(f.before);
  const a = Object.keys(f.after);
  const list = (xs: string[]) => (xs.length ? xs.map((x) => `"${x}"`).join(', ') : 'none');
  f.flagged = b.filter((v) => !(v in f.after));
  if (!e.ok) return;
  e.ok = false;
  if (!b.length) {
    e.detail += `; no response carried ${flag.header} while the flag was on (does the --mix include a route that answers with it?)`;
    return;
  }
  if (!a.length) {
    e.detail += `; no response carried ${flag.header} in the last second after the kill switch`;
    return;
  }
  if (!f.flagged.length) {
    e.detail += `; ${flag.header} was ${list(b)} with the flag ${flag.on} and ${list(a)} after the kill switch: no behaviour went away` + (b.length === 1 && b[0] === a[0] ? ` (the header never changed: does the app read ${flag.name}, and is ${flag.header} the right header?)` : ' (the kill switch did not apply)');
    return;
  }
  const last = lastVariantAt(load, new Set(f.flagged), f.writtenAt);
  f.lastFlaggedAt = last === undefined ? null : Math.round(last);
  f.offMs = last === undefined ? 0 : Math.max(0, Math.round(last - f.writtenAt));
  e.ok = true;
  e.detail += `; ${flag.header} ${list(f.flagged)} → ${list(a)}, last ${list(f.flagged)} response ${f.offMs} ms after var/flags.json was rewritten`;
}

/** Read back every acknowledged order by its Idempotency-Key: it must exist exactly once, with the id we were given. */
async function verifyOrders(origin: string, load: LoadResult, timeoutMs: number): Promise<OrdersCheck> {
  const { ledger } = load;
  const res: OrdersCheck = {
    acknowledged: ledger.acked.size,
    unacknowledged: ledger.unacked.size,
    attempts: ledger.attempts,
    retries: ledger.retries,
    verified: 0,
    missing: 0,
    duplicated: 0,
    mismatched: 0,
    unreachable: 0,
    unackedPresent: 0,
    totalInDatabase: null,
    ok: false,
    detail: '',
  };
  const pool = new Pool(origin, { connections: 4, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connect: { timeout: timeoutMs } });
  let down = false;
  const get = async (p: string): Promise<{ orders: Array<{ id: string }>; total: number } | undefined> => {
    // Once a read has failed through all its retries, the release is down: don't wait on each order.
    for (let attempt = 0; attempt < (down ? 0 : 4); attempt++) {
      try {
        const r = await pool.request({ method: 'GET', path: p });
        const text = await r.body.text();
        if (r.statusCode === 200) return JSON.parse(text) as { orders: Array<{ id: string }>; total: number };
      } catch {
        // retry
      }
      await sleep(100 * 2 ** attempt);
    }
    down = true;
    return undefined;
  };
  try {
    const jobs: Array<[string, string | undefined]> = [...ledger.acked.entries(), ...[...ledger.unacked].map((k) => [k, undefined] as [string, undefined])];
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const [key, id] = jobs[next++]!;
        const r = await get(`/orders?idempotency_key=${encodeURIComponent(key)}&limit=10`);
        if (!r) {
          res.unreachable++;
          continue;
        }
        const n = r.orders.length;
        if (id === undefined) {
          if (n === 1) res.unackedPresent++;
          if (n > 1) res.duplicated++;
          continue;
        }
        if (n === 0) res.missing++;
        else if (n > 1) res.duplicated++;
        else if (r.orders[0]!.id !== id) res.mismatched++;
        else res.verified++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const t = await get('/orders?limit=1');
    res.totalInDatabase = t ? t.total : null;
  } finally {
    await pool.close().catch(() => undefined);
  }
  res.ok = res.unreachable === 0 && res.missing === 0 && res.duplicated === 0 && res.mismatched === 0;
  res.detail = res.unreachable
    ? `could not read back ${res.unreachable} order(s): release not reachable`
    : `${res.verified}/${res.acknowledged} acknowledged orders exist exactly once` +
      (res.missing ? `, ${res.missing} missing` : '') +
      (res.duplicated ? `, ${res.duplicated} duplicated` : '') +
      (res.mismatched ? `, ${res.mismatched} with another id` : '') +
      ` (${res.retries} retries; ${res.unacknowledged} never acknowledged, ${res.unackedPresent} of them stored once)`;
  return res;
}

export function metricValue(metric: string, s: Summary, events: EventRecord[]): number | undefined {
  const l = s.latency;
  const maxOf = (xs: number[]) => (xs.length ? Math.max(...xs) : undefined);
  switch (metric) {
    case 'p50':
    case 'p90':
    case 'p95':
    case 'p99':
    case 'max':
      return s.requests ? l[metric] : undefined;
    case 'availability':
      return s.requests ? s.availability : undefined;
    case 'error_rate':
      return s.requests ? s.errorRate : undefined;
    case 'rps':
      return s.rps;
    case 'recovery':
      return maxOf(events.map((e) => e.recoveryMs));
    case 'rollback':
      return maxOf(events.filter((e) => e.kind === 'rollback').map((e) => e.ms));
    case 'upgrade':
      return maxOf(events.filter((e) => e.kind === 'upgrade').map((e) => e.ms));
    case 'flag_off':
      return maxOf(events.filter((e) => e.flag).map((e) => e.flag!.offMs));
  }
  return undefined;
}

function judge(slos: Threshold[], s: Summary, events: EventRecord[], orders: OrdersCheck, load: LoadResult): Verdict[] {
  const out: Verdict[] = [];
  for (const t of slos) {
    const v = metricValue(t.metric, s, events);
    out.push({ kind: 'slo', name: t.source, actual: formatValue(METRICS[t.metric]!.unit, v), ok: v === undefined ? null : holds(t, v) });
  }
  for (const e of events) {
    const rels = Object.keys(e.servingAfter);
    const servingOk = e.expectedServing !== null && rels.length === 1 && rels[0] === e.expectedServing;
    out.push({
      kind: 'check',
      name: e.kind === 'flag' ? `${e.label} applied on every worker` : e.label,
      actual: `${e.detail}; then served by ${rels.length ? rels.join(', ') : 'nothing'}`,
      ok: e.ok && servingOk,
    });
  }
  out.push({ kind: 'check', name: 'orders: each acknowledged write exists exactly once', actual: orders.detail, ok: orders.acknowledged + orders.unacknowledged === 0 ? null : orders.ok });
  out.push({ kind: 'check', name: 'load ran for the whole drill', actual: load.stoppedBy === 'stop' ? `${s.requests} requests in ${(s.durationMs / 1000).toFixed(1)} s` : `stopped early by its bound (${load.stoppedBy})`, ok: load.stoppedBy === 'stop' });
  return out;
}

export function verdictTable(r: Pick<DrillReport, 'verdicts'>): string {
  const w = Math.max(...r.verdicts.map((v) => v.name.length));
  return r.verdicts.map((v) => `  ${v.ok === null ? '-' : v.ok ? '✓' : '✗'} ${v.name.padEnd(w)}  ${v.actual}`).join('\n');
}
