// What every generator needs to know about a release, derived from its own config (the "slipway"
// key of package.json), so that the ops files can never disagree with the release they run.
import path from 'node:path';
import { loadProject, type ReleaseConfig } from '../build/config.ts';
import { parseDuration } from '../runtime/env.ts';

export interface GenModel {
  name: string;
  version: string;
  /** Where the app lives (for compose's build context), absolute. */
  appDir: string;
  port: number;
  host: string;
  workers: number;
  user: string;
  image: string;
  healthPath: string;
  readyPath: string;
  stopTimeout: string;
  drainDelay: string;
  stopTimeoutS: number;
  drainDelayS: number;
  readyTimeoutS: number;
  bakePeriodS: number;
  /** Where the release is unpacked on a host or in an image. */
  installDir: string;
  /** systemd TimeoutStopSec: drain delay + stop timeout + margin. */
  timeoutStopS: number;
  /** compose stop_grace_period. */
  graceS: number;
  /** Kubernetes preStop sleep (endpoints removal lag) and terminationGracePeriodSeconds. */
  preStopS: number;
  k8sGraceS: number;
}

/** Margin above drain delay + stop timeout, so the supervisor's own timeout always fires first. */
export const STOP_MARGIN_S = 15;

export function modelFromConfig(c: ReleaseConfig, version: string, appDir: string): GenModel {
  const s = (d: string) => Math.ceil(parseDuration(d) / 1000);
  const stopTimeoutS = s(c.stopTimeout);
  const drainDelayS = s(c.drainDelay);
  const preStopS = 5;
  return {
    name: c.name,
    version,
    appDir,
    port: c.port,
    host: c.host,
    workers: c.workers,
    user: c.user,
    image: c.image ?? `${c.name}:${version}`,
    healthPath: c.healthPath,
    readyPath: c.readyPath,
    stopTimeout: c.stopTimeout,
    drainDelay: c.drainDelay,
    stopTimeoutS,
    drainDelayS,
    readyTimeoutS: s(c.readyTimeout),
    bakePeriodS: s(c.bakePeriod),
    installDir: `/opt/${c.name}`,
    timeoutStopS: drainDelayS + stopTimeoutS + STOP_MARGIN_S,
    graceS: drainDelayS + stopTimeoutS + 10,
    preStopS,
    k8sGraceS: preStopS + drainDelayS + stopTimeoutS + 10,
  };
}

export function loadModel(dir: string): GenModel {
  const p = loadProject(path.resolve(dir));
  return modelFromConfig(p.config, p.version, path.resolve(dir));
}
