// A typed door to autocannon 9's programmatic API (the package ships no types).
import { createRequire } from 'node:module';

export interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  amount?: number;
  /** stop after this many requests overall, even if the duration is not over */
  maxOverallRequests?: number;
  pipelining?: number;
  timeout?: number;
}

interface Histo {
  average: number;
  mean: number;
  stddev: number;
  min: number;
  max: number;
  p50: number;
  p90: number;
  p99: number;
  p99_9?: number;
  total: number;
}

export interface AutocannonResult {
  requests: Histo;
  latency: Histo;
  throughput: Histo;
  errors: number;
  timeouts: number;
  non2xx: number;
  resets?: number;
  duration: number;
  '2xx': number;
}

type Autocannon = (opts: AutocannonOptions, cb: (err: Error | null, res: AutocannonResult) => void) => unknown;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export function cannon(opts: AutocannonOptions): Promise<AutocannonResult> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
  });
}
