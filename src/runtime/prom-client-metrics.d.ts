// prom-client's default metrics one by one (its lib/metrics/*.js, which have no types of their
// own): each registers its metrics on the registry, as collectDefaultMetrics does for all of them.
declare module 'prom-client/lib/metrics/*.js' {
  import type { Registry } from 'prom-client';
  const register: (registry: Registry, config: { eventLoopMonitoringPrecision?: number; prefix?: string; labels?: Record<string, string> }) => void;
  export default register;
}
