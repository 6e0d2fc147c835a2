// src/gen: systemd, compose, Kubernetes and Dockerfile generators, and `slipway gen --check`.
import path from 'node:path';
import { composeFile } from './compose.ts';
import { dockerfile } from './dockerfile.ts';
import { k8sFiles } from './k8s.ts';
import type { GenModel } from './model.ts';
import { systemdFiles } from './systemd.ts';

export { loadModel, modelFromConfig, type GenModel } from './model.ts';
export { checkFile, checkSystemd, checkCompose, checkK8s, checkDockerfile, kindOf, parseSpan, type Problem } from './check.ts';
export { serviceUnit, socketUnit } from './systemd.ts';

export const TARGETS = ['systemd', 'compose', 'k8s', 'dockerfile'] as const;
export type Target = (typeof TARGETS)[number];

/** The files of one target, keyed by path relative to the output directory. */
export function generate(target: Target, m: GenModel, outDir: string): Record<string, string> {
  switch (target) {
    case 'systemd':
      return systemdFiles(m);
    case 'compose':
      return { 'docker-compose.app.yml': composeFile(m, path.resolve(outDir)) };
    case 'k8s':
      return k8sFiles(m);
    case 'dockerfile':
      return { Dockerfile: dockerfile(m) };
  }
}

export function generateAll(m: GenModel, outDir: string, targets: readonly Target[] = TARGETS): Record<string, string> {
  return Object.assign({}, ...targets.map((t) => generate(t, m, outDir))) as Record<string, string>;
}
