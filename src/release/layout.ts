// The release on disk: where things are, and the manifest each release directory carries.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { SupervisorInfo } from '../protocol.ts';

export interface ReleaseSettings {
  name: string;
  port: number;
  host: string;
  workers: number;
  stopTimeout: string;
  drainDelay: string;
  readyTimeout: string;
  heartTimeout: string;
  bakePeriod: string;
  maxRestarts: number;
  maxSeconds: number;
  keepReleases: number;
  logMaxBytes: number;
  logGenerations: number;
  healthPath: string;
  readyPath: string;
  nodeFlags: string[];
  includeNode: boolean;
}

/** releases/VSN/release.json */
export interface ReleaseManifest {
  name: string;
  version: string;
  env: string;
  builtAt: string;
  node: string;
  slipway: string;
  settings: ReleaseSettings;
  /** sha256 of every file of releases/VSN (except this manifest), relative paths. */
  files: Record<string, string>;
}

export class ReleaseRoot {
  constructor(readonly root: string) {}
  get releasesDir() {
    return path.join(this.root, 'releases');
  }
  get tmpDir() {
    return process.env.RELEASE_TMP ?? path.join(this.root, 'tmp');
  }
  get logDir() {
    return process.env.RELEASE_LOG ?? path.join(this.root, 'log');
  }
  get varDir() {
    return process.env.RELEASE_VAR ?? path.join(this.root, 'var');
  }
  get controlSocket() {
    return path.join(this.tmpDir, 'control.sock');
  }
  get infoFile() {
    return path.join(this.tmpDir, 'supervisor.json');
  }
  get lastExitFile() {
    return path.join(this.tmpDir, 'last_exit');
  }
  get cookieFile() {
    return path.join(this.releasesDir, 'COOKIE');
  }
  get startData() {
    return path.join(this.releasesDir, 'start.data');
  }
  get releasesFile() {
    return path.join(this.releasesDir, 'RELEASES');
  }
  versionDir(vsn: string) {
    return path.join(this.releasesDir, vsn);
  }
  appEntry(vsn: string) {
    return path.join(this.versionDir(vsn), 'app', 'app.mjs');
  }
  envSh(vsn: string) {
    return path.join(this.versionDir(vsn), 'env.sh');
  }
  /** tmp/supervisor.json of the running supervisor, or undefined when none runs. */
  info(): SupervisorInfo | undefined {
    try {
      return JSON.parse(readFileSync(this.infoFile, 'utf8')) as SupervisorInfo;
    } catch {
      return undefined;
    }
  }
  manifest(vsn: string): ReleaseManifest {
    return JSON.parse(readFileSync(path.join(this.versionDir(vsn), 'release.json'), 'utf8')) as ReleaseManifest;
  }
}

export const VERSION_PATTERN = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/;
