// The statistics the benchmarks' verdicts rest on (bench/lib/stats.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { median, medianInterval } from '../bench/lib/stats.ts';

test('medianInterval: the order statistics of the standard tables, in any input order', () => {
  // Ranks (1-based) of the distribution-free 95 % interval for the median: n=10 → 2..9,
  // n=20 → 6..15, n=40 → 14..27 (coverage 97.9, 95.9 and 96.2 %).
  for (const [n, lo, hi, cover] of [
    [10, 2, 9, 0.9785],
    [20, 6, 15, 0.9586],
    [40, 14, 27, 0.9615],
  ] as const) {
    const xs = Array.from({ length: n }, (_, i) => (i + 1) * 1.5).reverse();
    const got = medianInterval(xs);
    assert.equal(got.low, lo * 1.5, `n=${n} low`);
    assert.equal(got.high, hi * 1.5, `n=${n} high`);
    assert.ok(Math.abs(got.level - cover) < 1e-3, `n=${n} coverage ${got.level}`);
  }
});

test('medianInterval: no interval from too few samples; a stricter level widens it', () => {
  assert.ok(Number.isNaN(medianInterval([1, 2, 3, 4, 5]).low));
  const xs = Array.from({ length: 60 }, (_, i) => i);
  const at95 = medianInterval(xs, 0.95);
  const at99 = medianInterval(xs, 0.99);
  assert.ok(at99.low < at95.low && at99.high > at95.high);
  assert.ok(at95.low <= median(xs) && median(xs) <= at95.high);
  assert.ok(at99.level >= 0.99);
});
