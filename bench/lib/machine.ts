// What the numbers were measured on: CPU model and count, memory, Node, load, date, commit.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Machine {
  date: string;
  cpuModel: string;
  cores: number;
  memGiB: number;
  node: string;
  kernel: string;
  loadAvgAtStart: number[];
  /** /proc/pressure/cpu "some avg60": % of the last minute in which runnable tasks waited for a CPU */
  cpuPressureAtStart?: number;
  commit: string;
  note: string;
}

export function machine(): Machine {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /Model name:\s*(.+)/.exec(execFileSync('lscpu', { encoding: 'utf8' }));
    if (m) cpuModel = m[1]!.trim();
  } catch {
    // no lscpu
  }
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // not a checkout
  }
  let memGiB = os.totalmem() / 2 ** 30;
  try {
    const m = /MemTotal:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) memGiB = Number(m[1]) / 2 ** 20;
  } catch {
    // not linux
  }
  return {
    date: new Date().toISOString(),
    cpuModel,
    cores: os.cpus().length,
    memGiB: Math.round(memGiB * 10) / 10,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    loadAvgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    cpuPressureAtStart: cpuPressure(),
    commit,
    note: 'shared machine: other engineers may run tests at the same time; see the spread columns',
  };
}

export function machineLine(m: Machine): string {
  return `${m.cpuModel}, ${m.cores} cores, ${m.memGiB} GiB, Node ${m.node}, ${m.kernel}, load ${m.loadAvgAtStart.join(' ')}, CPU pressure ${m.cpuPressureAtStart ?? '?'}%, ${m.date}, commit ${m.commit}`;
}

/** Resident memory (VmRSS) of a pid in bytes, from /proc; undefined if gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export const MB = 1024 * 1024;

export interface MemDetail {
  /** VmRSS: every resident page, including the node binary's pages shared with other node processes */
  rss: number;
  /** proportional set size: shared pages divided among the processes that map them */
  pss: number;
  /** Private_Clean + Private_Dirty (USS): what the process alone costs */
  private: number;
  /** Shared_Clean + Shared_Dirty */
  shared: number;
}

/** RSS, PSS, private and shared bytes of a pid, from /proc/PID/smaps_rollup. */
export function memDetail(pid: number): MemDetail | undefined {
  try {
    const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(t)?.[1] ?? 0) * 1024;
    return { rss: kb('Rss'), pss: kb('Pss'), private: kb('Private_Clean') + kb('Private_Dirty'), shared: kb('Shared_Clean') + kb('Shared_Dirty') };
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a pid has used so far, in ms (clock ticks of 10 ms); 0 if gone. */
export function cpuMs(pid: number): number {
  return statCpuMs(`/proc/${pid}/stat`);
}

/**
 * CPU time of a pid's main thread only (its JavaScript for a node process; V8's GC and compiler
 * helpers and libuv's pool, which does a node process's file writes, are the other threads).
 */
export function mainThreadCpuMs(pid: number): number {
  return statCpuMs(`/proc/${pid}/task/${pid}/stat`);
}

function statCpuMs(file: string): number {
  try {
    const f = readFileSync(file, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

/** CPU pressure (PSI "some avg60", %), or undefined where /proc/pressure is missing. */
export function cpuPressure(): number | undefined {
  try {
    const m = /some avg10=[\d.]+ avg60=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
