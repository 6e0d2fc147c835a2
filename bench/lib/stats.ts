// Small statistics and formatting helpers: exact percentiles from sorted samples, medians,
// spread (min–max and relative), and a plain-text table.

export function sorted(xs: number[]): number[] {
  return Float64Array.from(xs).sort() as unknown as number[];
}

/** Exact percentile (nearest-rank) of an ascending array; NaN when empty. */
export function pct(asc: ArrayLike<number>, p: number): number {
  if (asc.length === 0) return NaN;
  const rank = Math.min(asc.length - 1, Math.max(0, Math.ceil((p / 100) * asc.length) - 1));
  return asc[rank]!;
}

/** Median (mean of the two middle values when the count is even). */
export function median(xs: number[]): number {
  const s = sorted(xs);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * A distribution-free confidence interval for the median: the order statistics x(j) and
 * x(n+1-j) with the largest j for which P(Binomial(n, 1/2) < j) <= (1 - level) / 2, so that the
 * interval holds the true median with at least `level` probability when the samples are
 * independent draws. NaNs when there are too few samples for the level (fewer than 6 at 95 %).
 */
export function medianInterval(xs: number[], level = 0.95): { low: number; high: number; level: number } {
  const s = sorted(xs);
  const n = s.length;
  const tail = (1 - level) / 2;
  // P(B < j) for B ~ Binomial(n, 1/2), term by term; C(n, k) in log space (n may be in the hundreds).
  let logChoose = 0;
  let below = 0;
  let j = 0;
  while (j < n) {
    const p = Math.exp(logChoose - n * Math.LN2);
    if (below + p > tail) break;
    below += p;
    j++;
    logChoose += Math.log((n - j + 1) / j);
  }
  // P(B < j) <= tail: x(j) and x(n+1-j), 1-based (j = 0: no interval at this level).
  if (j === 0) return { low: NaN, high: NaN, level };
  return { low: s[j - 1]!, high: s[n - j]!, level: 1 - 2 * below };
}

export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median, in percent. */
  spreadPct: number;
  n: number;
  values: number[];
}

export function spread(xs: number[]): Spread {
  const s = sorted(xs);
  const med = median(xs);
  return { median: med, min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, spreadPct: med ? ((s[s.length - 1]! - s[0]!) / med) * 100 : NaN, n: xs.length, values: xs };
}

export function fmt(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return '-';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function fmtSpread(s: Spread, digits = 1, unit = ''): string {
  return `${fmt(s.median, digits)}${unit} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** Markdown table, for pasting into BENCHMARKS.md. */
export function mdTable(rows: string[][]): string {
  return [`| ${rows[0]!.join(' | ')} |`, `|${rows[0]!.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`, ...rows.slice(1).map((r) => `| ${r.join(' | ')} |`)].join('\n');
}
