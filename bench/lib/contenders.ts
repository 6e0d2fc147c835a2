// Boot helpers shared by the release benchmarks: the release under its supervisor, the same bundle
// as plain node, and (as a reference) the same bundle under PM2 cluster mode.
import path from 'node:path';
import { descendants, tempDir } from './cleanup.ts';
import { Pm2 } from './pm2.ts';
import { Deployed, PlainNode, buildOrders, freePort, waitFor200 } from './release.ts';

export interface Running {
  label: string;
  port: number;
  /** pid of the process that manages the app (supervisor or PM2 daemon), if any */
  managerPid?: number;
  /** every process serving the app (manager and workers), for CPU accounting */
  pids(): number[];
  stop(): Promise<void>;
}

export async function bootRelease(version: string, workers: number, label = 'release (bin/orders daemon)'): Promise<Running & { deployed: Deployed }> {
  const build = await buildOrders(version);
  const d = await Deployed.deploy(build, {});
  const port = await freePort();
  await d.daemon({ PORT: String(port), SLIPWAY_WORKERS: String(workers) });
  await waitFor200(port, '/ready', performance.now());
  return { label, port, managerPid: d.supervisorPid, deployed: d, pids: () => [d.supervisorPid!, ...descendants(d.supervisorPid!)], stop: () => d.stop() };
}

export async function bootPlain(version: string, label = 'plain node', nodeFlags: string[] = []): Promise<Running & { plain: PlainNode }> {
  const build = await buildOrders(version);
  const d = await Deployed.deploy(build, {});
  const port = await freePort();
  const plain = PlainNode.fromDeploy(d, version, port, path.join(tempDir('slipway-bench-var-'), 'var'), nodeFlags);
  const t0 = performance.now();
  plain.start();
  await waitFor200(port, '/ready', t0, 30_000, 5, () => plain.exited);
  return { label, port, plain, pids: () => (plain.child?.pid ? [plain.child.pid] : []), stop: () => plain.stop() };
}

export async function bootPm2(version: string, instances: number, label = 'PM2 cluster'): Promise<Running & { pm2: Pm2; appEntry: string }> {
  const build = await buildOrders(version);
  const d = await Deployed.deploy(build, {});
  const port = await freePort();
  const pm2 = new Pm2();
  const appEntry = path.join(d.root, 'releases', version, 'app', 'app.mjs');
  await pm2.start({
    name: 'orders',
    script: appEntry,
    mode: 'cluster',
    instances,
    env: { PORT: String(port), HOST: '127.0.0.1', SLIPWAY_MODE: 'standalone', RELEASE_VAR: path.join(tempDir('slipway-bench-var-'), 'var'), LOG_LEVEL: 'warn' },
  });
  await waitFor200(port, '/ready', performance.now());
  const god = pm2.daemonPid()!;
  return { label, port, managerPid: god, pm2, appEntry, pids: () => [god, ...descendants(god)], stop: () => pm2.kill() };
}
