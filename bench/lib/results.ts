// Results are written as JSON under bench/results/NAME.json (committed when quoted in BENCHMARKS.md).
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuPressure } from './machine.ts';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = path.resolve(BENCH_DIR, '..');

export function writeResults(name: string, data: Record<string, unknown>, out?: string): string {
  const file = out ? path.resolve(out) : path.join(BENCH_DIR, 'results', `${name}.json`);
  mkdirSync(path.dirname(file), { recursive: true });
  const loadAvgAtEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  writeFileSync(file, JSON.stringify({ ...data, loadAvgAtEnd, cpuPressureAtEnd: cpuPressure(), finishedAt: new Date().toISOString() }, null, 2) + '\n');
  return file;
}
