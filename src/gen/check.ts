// `slipway gen --check`: catch mistakes in unit, compose, manifest and Docker files before they
// ship: unknown keys (against systemd's own directive list, the compose-spec schema and the
// Kubernetes schemas) and timeouts that cannot work (a grace period shorter than drain + stop).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseDuration } from '../runtime/env.ts';
import type { GenModel } from './model.ts';

export interface Problem {
  file: string;
  message: string;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

// ── durations ────────────────────────────────────────────────────────────────────────────────

const SPAN_UNITS: Record<string, number> = {
  us: 0.001, usec: 0.001, ms: 1, msec: 1, s: 1000, sec: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, minute: 60_000, minutes: 60_000, h: 3_600_000, hr: 3_600_000, hour: 3_600_000, hours: 3_600_000,
};

/** "45", "45s", "1min 30s", "1m30s" (systemd time spans and compose durations) in ms; undefined if unparsable. */
export function parseSpan(raw: string, bareUnit = 1000): number | undefined {
  const s = raw.trim();
  if (s === 'infinity') return Infinity;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * bareUnit;
  let total = 0;
  let rest = s;
  const re = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)/;
  while (rest.trim()) {
    const m = re.exec(rest);
    if (!m || SPAN_UNITS[m[2]!] === undefined) return undefined;
    total += Number(m[1]) * SPAN_UNITS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return total;
}

const fmt = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

interface StopBudget {
  stopMs: number;
  drainMs: number;
  source: string;
}

/** The supervisor's stop timeout and drain delay, from the file's own environment, else the release config. */
function stopBudget(env: Record<string, string | undefined>, model: GenModel | undefined): StopBudget {
  const pick = (key: string, fromModel: string | undefined, dflt: string): [number, string] => {
    const v = env[key];
    if (v !== undefined) return [parseDuration(v, key), key];
    if (fromModel !== undefined) return [parseDuration(fromModel), 'release config'];
    return [parseDuration(dflt), 'default'];
  };
  const [stopMs, s1] = pick('SLIPWAY_STOP_TIMEOUT', model?.stopTimeout, '30s');
  const [drainMs, s2] = pick('SLIPWAY_DRAIN_DELAY', model?.drainDelay, '0s');
  return { stopMs, drainMs, source: s1 === s2 ? s1 : `${s1}/${s2}` };
}

// ── systemd ──────────────────────────────────────────────────────────────────────────────────

let directives: Record<string, string[]> | undefined;
function systemdDirectives(): Record<string, string[]> {
  directives ??= (JSON.parse(readFileSync(path.join(HERE, 'schemas', 'systemd-directives.json'), 'utf8')) as { sections: Record<string, string[]> }).sections;
  return directives;
}

export function checkSystemd(file: string, text: string, model?: GenModel): Problem[] {
  const out: Problem[] = [];
  const known = systemdDirectives();
  const ext = path.extname(file).slice(1);
  const typeSection = ext.charAt(0).toUpperCase() + ext.slice(1);
  const values: Record<string, Record<string, string[]>> = {};
  let section: string | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    const no = i + 1;
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + ' ' + lines[++i]!;
    const t = line.trim();
    if (!t || t.startsWith('#') || t.startsWith(';')) continue;
    const sec = /^\[([^\]]+)\]$/.exec(t);
    if (sec) {
      section = sec[1]!;
      if (!known[section]) out.push({ file, message: `line ${no}: unknown section [${section}]` });
      else if (!['Unit', 'Install', typeSection].includes(section)) out.push({ file, message: `line ${no}: section [${section}] does not belong in a .${ext} unit` });
      continue;
    }
    const kv = /^([A-Za-z0-9]+)\s*=\s*(.*)$/.exec(t);
    if (!kv) {
      out.push({ file, message: `line ${no}: not a "Key=value" line: ${t}` });
      continue;
    }
    if (!section) {
      out.push({ file, message: `line ${no}: ${kv[1]}= outside of any section` });
      continue;
    }
    const list = known[section];
    if (list && !list.includes(kv[1]!)) {
      const near = list.find((k) => k.toLowerCase() === kv[1]!.toLowerCase());
      out.push({ file, message: `line ${no}: unknown key ${kv[1]}= in [${section}]${near ? ` (did you mean ${near}=?)` : ''}` });
    }
    ((values[section] ??= {})[kv[1]!] ??= []).push(kv[2]!);
  }
  const svc = values.Service;
  if (ext === 'service' && svc) {
    const env: Record<string, string> = {};
    for (const v of svc.Environment ?? []) for (const m of v.matchAll(/"([^"=]+)=([^"]*)"|([^\s"=]+)=(\S*)/g)) env[m[1] ?? m[3]!] = m[2] ?? m[4]!;
    let budget: StopBudget;
    try {
      budget = stopBudget(env, model);
    } catch (err) {
      out.push({ file, message: (err as Error).message });
      return out;
    }
    const raw = (svc.TimeoutStopSec ?? svc.TimeoutSec)?.at(-1);
    const need = budget.stopMs + budget.drainMs;
    if (raw === undefined) {
      if (need >= 90_000) out.push({ file, message: `TimeoutStopSec= is not set: systemd's default 90s is not above drain delay + stop timeout (${fmt(need)}, ${budget.source})` });
    } else {
      const ms = parseSpan(raw);
      if (ms === undefined) out.push({ file, message: `TimeoutStopSec=${raw}: not a time span` });
      else if (ms <= need)
        out.push({
          file,
          message: `TimeoutStopSec=${raw} is not above drain delay ${fmt(budget.drainMs)} + stop timeout ${fmt(budget.stopMs)} = ${fmt(need)} (${budget.source}): systemd would SIGKILL workers in the middle of their drain`,
        });
    }
    const type = svc.Type?.at(-1);
    if (svc.WatchdogSec && type !== 'notify' && type !== 'notify-reload') out.push({ file, message: `WatchdogSec= needs Type=notify (the supervisor sends WATCHDOG=1 through sd_notify)` });
  }
  return out;
}

// ── compose ──────────────────────────────────────────────────────────────────────────────────

let composeValidator: ReturnType<Ajv['compile']> | undefined;
function composeSchema() {
  if (!composeValidator) {
    const schema = JSON.parse(readFileSync(path.join(HERE, 'schemas', 'compose-spec.schema.json'), 'utf8')) as Record<string, unknown>;
    delete schema.$schema;
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    composeValidator = ajv.compile(schema);
  }
  return composeValidator;
}

function where(instancePath: string): string {
  return instancePath.replace(/^\//, '').replace(/\//g, '.') || '(top level)';
}

function ajvMessages(errors: ErrorObject[]): string[] {
  const extra = errors.filter((e) => e.keyword === 'additionalProperties');
  if (extra.length) return [...new Set(extra.map((e) => `${where(e.instancePath)}: unknown key "${(e.params as { additionalProperty: string }).additionalProperty}"`))];
  const e = errors.find((x) => !['oneOf', 'anyOf', 'if'].includes(x.keyword)) ?? errors[0]!;
  return [`${where(e.instancePath)}: ${e.message ?? e.keyword}`];
}

export function checkCompose(file: string, text: string, model?: GenModel): Problem[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return [{ file, message: `not valid YAML: ${(err as Error).message.split('\n')[0]}` }];
  }
  const out: Problem[] = [];
  const validate = composeSchema();
  if (!validate(doc)) for (const m of ajvMessages(validate.errors ?? [])) out.push({ file, message: `compose-spec: ${m}` });
  const services = ((doc as { services?: Record<string, Record<string, unknown>> })?.services ?? {}) as Record<string, Record<string, unknown>>;
  for (const [name, svc] of Object.entries(services)) {
    if (!svc || typeof svc !== 'object') continue;
    const env = composeEnv(svc.environment);
    const ours = 'SLIPWAY_STOP_TIMEOUT' in env || JSON.stringify(svc.healthcheck ?? '').includes('"ready"') || (model !== undefined && name === 'app');
    if (!ours || (Array.isArray(svc.command) && svc.command[0] === 'eval')) continue;
    let budget: StopBudget;
    try {
      budget = stopBudget(env, model);
    } catch (err) {
      out.push({ file, message: `services.${name}: ${(err as Error).message}` });
      continue;
    }
    const raw = svc.stop_grace_period === undefined ? undefined : String(svc.stop_grace_period);
    const grace = raw === undefined ? 10_000 : parseSpan(raw, 1);
    const need = budget.stopMs + budget.drainMs;
    if (grace === undefined) out.push({ file, message: `services.${name}.stop_grace_period: "${raw}" is not a duration` });
    else if (grace <= need)
      out.push({
        file,
        message: `services.${name}.stop_grace_period ${raw ?? '(default 10s)'} is not above drain delay ${fmt(budget.drainMs)} + stop timeout ${fmt(budget.stopMs)} = ${fmt(need)} (${budget.source}): docker would SIGKILL the release in the middle of its drain`,
      });
  }
  return out;
}

function composeEnv(raw: unknown): Record<string, string> {
  if (Array.isArray(raw)) return Object.fromEntries(raw.map((x) => String(x).split(/=(.*)/s).slice(0, 2) as [string, string]));
  if (raw && typeof raw === 'object') return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, String(v ?? '')]));
  return {};
}

// ── Kubernetes ───────────────────────────────────────────────────────────────────────────────

const MODELS: Record<string, string> = {
  'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment',
  'v1/Service': 'kubernetes-models/v1/Service',
  'v1/ConfigMap': 'kubernetes-models/v1/ConfigMap',
  'v1/Secret': 'kubernetes-models/v1/Secret',
  'policy/v1/PodDisruptionBudget': 'kubernetes-models/policy/v1/PodDisruptionBudget',
  'batch/v1/Job': 'kubernetes-models/batch/v1/Job',
};

const propsCache = new Map<string, Set<string>>();
/** The property names a Kubernetes schema knows, read from kubernetes-models' compiled validator. */
function knownProps(schema: string): Set<string> {
  let s = propsCache.get(schema);
  if (!s) {
    const pkg = schema.startsWith('IoK8sApimachinery') ? '@kubernetes-models/apimachinery' : 'kubernetes-models';
    const file = path.join(path.dirname(require.resolve(`${pkg}/package.json`)), '_schemas', `${schema}.mjs`);
    s = new Set([...readFileSync(file, 'utf8').matchAll(/void 0===data\.([A-Za-z0-9_$]+)/g)].map((m) => m[1]!));
    propsCache.set(schema, s);
  }
  return s;
}

const C = 'IoK8sApiCoreV1';
// Which schema each nested object path follows ("[]" = each array item). The schemas accept any
// extra key; this walk catches misspelt keys where mistakes usually happen.
const WALK: Record<string, Array<[string, string]>> = {
  Deployment: [
    ['', 'IoK8sApiAppsV1Deployment'], ['metadata', 'IoK8sApimachineryPkgApisMetaV1ObjectMeta'], ['spec', 'IoK8sApiAppsV1DeploymentSpec'],
    ['spec.strategy', 'IoK8sApiAppsV1DeploymentStrategy'], ['spec.strategy.rollingUpdate', 'IoK8sApiAppsV1RollingUpdateDeployment'],
    ['spec.template.metadata', 'IoK8sApimachineryPkgApisMetaV1ObjectMeta'], ['spec.template.spec', `${C}PodSpec`],
  ],
  Job: [['', 'IoK8sApiBatchV1Job'], ['metadata', 'IoK8sApimachineryPkgApisMetaV1ObjectMeta'], ['spec', 'IoK8sApiBatchV1JobSpec'], ['spec.template.spec', `${C}PodSpec`]],
  Service: [['', `${C}Service`], ['metadata', 'IoK8sApimachineryPkgApisMetaV1ObjectMeta'], ['spec', `${C}ServiceSpec`], ['spec.ports[]', `${C}ServicePort`]],
  PodDisruptionBudget: [['', 'IoK8sApiPolicyV1PodDisruptionBudget'], ['metadata', 'IoK8sApimachineryPkgApisMetaV1ObjectMeta'], ['spec', 'IoK8sApiPolicyV1PodDisruptionBudgetSpec']],
};
const CONTAINER_WALK: Array<[string, string]> = [
  ['', `${C}Container`], ['startupProbe', `${C}Probe`], ['readinessProbe', `${C}Probe`], ['livenessProbe', `${C}Probe`],
  ['startupProbe.httpGet', `${C}HTTPGetAction`], ['readinessProbe.httpGet', `${C}HTTPGetAction`], ['livenessProbe.httpGet', `${C}HTTPGetAction`],
  ['lifecycle', `${C}Lifecycle`], ['lifecycle.preStop', `${C}LifecycleHandler`], ['ports[]', `${C}ContainerPort`], ['env[]', `${C}EnvVar`],
  ['resources', `${C}ResourceRequirements`], ['securityContext', `${C}SecurityContext`],
];

function at(obj: unknown, p: string): unknown[] {
  let cur: unknown[] = [obj];
  if (!p) return cur;
  for (const part of p.split('.')) {
    const arr = part.endsWith('[]');
    const key = arr ? part.slice(0, -2) : part;
    cur = cur.flatMap((o) => {
      const v = o && typeof o === 'object' ? (o as Record<string, unknown>)[key] : undefined;
      if (v === undefined || v === null) return [];
      return arr ? (Array.isArray(v) ? v : []) : [v];
    });
  }
  return cur;
}

function unknownKeys(obj: unknown, walk: Array<[string, string]>, prefix: string): string[] {
  const out: string[] = [];
  for (const [p, schema] of walk) {
    const props = knownProps(schema);
    for (const o of at(obj, p)) {
      if (!o || typeof o !== 'object' || Array.isArray(o)) continue;
      for (const k of Object.keys(o)) if (!props.has(k)) out.push(`${prefix}${p ? p.replace(/\[\]/g, '[*]') + '.' : ''}${k}: unknown key`);
    }
  }
  return out;
}

export async function checkK8s(file: string, text: string, model?: GenModel): Promise<Problem[]> {
  const out: Problem[] = [];
  const docs = parseAllDocuments(text);
  for (const [i, d] of docs.entries()) {
    if (d.errors.length) {
      out.push({ file, message: `document ${i + 1}: not valid YAML: ${d.errors[0]!.message.split('\n')[0]}` });
      continue;
    }
    const obj = d.toJS() as Record<string, unknown> | null;
    if (!obj) continue;
    const id = `${obj.apiVersion}/${obj.kind}`;
    const label = `${obj.kind ?? '?'} ${(obj.metadata as { name?: string })?.name ?? ''}`.trim();
    const mod = MODELS[id];
    if (!mod) {
      out.push({ file, message: `${label}: no schema for apiVersion ${String(obj.apiVersion)} kind ${String(obj.kind)} (known: ${Object.keys(MODELS).join(', ')})` });
      continue;
    }
    const Model = Object.values((await import(mod)) as Record<string, new (data: unknown) => { validate(): void }>).find((v) => typeof v === 'function')!;
    try {
      new Model(obj).validate();
    } catch (err) {
      out.push({ file, message: `${label}: ${(err as Error).message.replace(/\bdata\//g, '').replace(/\//g, '.')}` });
    }
    for (const m of unknownKeys(obj, WALK[String(obj.kind)] ?? [], '')) out.push({ file, message: `${label}: ${m}` });
    const podSpec = at(obj, 'spec.template.spec')[0] as Record<string, unknown> | undefined;
    if (!podSpec) continue;
    for (const [ci, c] of ((podSpec.containers as unknown[]) ?? []).entries()) {
      for (const m of unknownKeys(c, CONTAINER_WALK, `spec.template.spec.containers[${ci}].`)) out.push({ file, message: `${label}: ${m}` });
    }
    if (obj.kind !== 'Deployment') continue;
    const c = ((podSpec.containers as Array<Record<string, unknown>>) ?? [])[0];
    if (!c) continue;
    const env = Object.fromEntries(((c.env as Array<{ name: string; value?: string }>) ?? []).map((e) => [e.name, e.value]));
    let budget: StopBudget;
    try {
      budget = stopBudget(env, model);
    } catch (err) {
      out.push({ file, message: `${label}: ${(err as Error).message}` });
      continue;
    }
    const preStopCmd = JSON.stringify(at(c, 'lifecycle.preStop')[0] ?? '');
    const preStopMs = Number(/sleep (\d+)/.exec(preStopCmd)?.[1] ?? 0) * 1000;
    const grace = Number(podSpec.terminationGracePeriodSeconds ?? 30) * 1000;
    const need = preStopMs + budget.drainMs + budget.stopMs;
    if (grace <= need)
      out.push({
        file,
        message: `${label}: terminationGracePeriodSeconds ${grace / 1000} is not above preStop ${fmt(preStopMs)} + drain delay ${fmt(budget.drainMs)} + stop timeout ${fmt(budget.stopMs)} = ${fmt(need)} (${budget.source}): the kubelet would SIGKILL the pod in the middle of its drain`,
      });
    const ru = at(obj, 'spec.strategy.rollingUpdate')[0] as { maxUnavailable?: unknown } | undefined;
    if (String(ru?.maxUnavailable ?? '25%') !== '0') out.push({ file, message: `${label}: spec.strategy.rollingUpdate.maxUnavailable must be 0 (never fewer ready pods during a rollout)` });
    for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) if (!c[probe]) out.push({ file, message: `${label}: container ${String(c.name)} has no ${probe}` });
  }
  return out;
}

// ── Dockerfile ───────────────────────────────────────────────────────────────────────────────

const INSTRUCTIONS = ['FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL'];

export function checkDockerfile(file: string, text: string): Problem[] {
  const out: Problem[] = [];
  const lines = text.split('\n');
  let cont = false;
  let sawFrom = false;
  for (const [i, line] of lines.entries()) {
    const t = line.trim();
    const wasCont = cont;
    cont = t.endsWith('\\');
    if (wasCont || !t || t.startsWith('#')) continue;
    const word = t.split(/\s+/)[0]!.toUpperCase();
    if (!INSTRUCTIONS.includes(word)) out.push({ file, message: `line ${i + 1}: unknown instruction ${t.split(/\s+/)[0]}` });
    if (word === 'FROM') sawFrom = true;
    else if (!sawFrom && word !== 'ARG') out.push({ file, message: `line ${i + 1}: ${word} before FROM` });
  }
  if (!/^USER\s+(?!root\b|0\b)\S+/m.test(text)) out.push({ file, message: 'no non-root USER: the release would run as root' });
  if (!/^HEALTHCHECK\s/m.test(text)) out.push({ file, message: 'no HEALTHCHECK' });
  return out;
}

// ── dispatch ─────────────────────────────────────────────────────────────────────────────────

export type FileKind = 'systemd' | 'compose' | 'k8s' | 'dockerfile' | 'other';

export function kindOf(file: string, text: string): FileKind {
  const base = path.basename(file);
  if (/\.(service|socket)$/.test(base)) return 'systemd';
  if (/^Dockerfile/.test(base) || base.endsWith('.Dockerfile')) return 'dockerfile';
  if (/\.ya?ml$/.test(base)) return /^\s*apiVersion\s*:/m.test(text) && /^\s*kind\s*:/m.test(text) ? 'k8s' : 'compose';
  return 'other';
}

export async function checkFile(file: string, text: string, model?: GenModel): Promise<Problem[]> {
  switch (kindOf(file, text)) {
    case 'systemd':
      return checkSystemd(file, text, model);
    case 'compose':
      return checkCompose(file, text, model);
    case 'k8s':
      return checkK8s(file, text, model);
    case 'dockerfile':
      return checkDockerfile(file, text);
    default:
      return [];
  }
}
