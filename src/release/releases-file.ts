// releases/RELEASES and releases/start.data: the state of every release on disk, as Erlang's
// release_handler keeps them. States: unpacked → current → permanent → old.
import path from 'node:path';
import { chownSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { ReleaseRoot } from './layout.ts';

export type ReleaseState = 'unpacked' | 'current' | 'permanent' | 'old';

export interface ReleaseEntry {
  version: string;
  state: ReleaseState;
  installedAt: string;
  changedAt: string;
  note?: string;
}

export interface ReleasesFile {
  releases: ReleaseEntry[];
}

export function readReleases(rel: ReleaseRoot): ReleasesFile {
  if (!existsSync(rel.releasesFile)) return { releases: [] };
  const parsed = JSON.parse(readFileSync(rel.releasesFile, 'utf8')) as ReleasesFile;
  if (!Array.isArray(parsed.releases)) throw new Error(`${rel.releasesFile}: not a RELEASES file`);
  return parsed;
}

/** Write-then-rename, so a crash never leaves a half-written file. */
export function writeAtomic(file: string, text: string, mode = 0o644): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  const owner = serviceOwner(path.dirname(file));
  if (owner) chownSync(tmp, owner.uid, owner.gid);
  renameSync(tmp, file);
}

/**
 * When root runs a command (e.g. `sudo bin/orders install`) in a release root that belongs to the
 * service user, what it writes must belong to that user too, or the supervisor (running as the
 * service user) cannot prune or rewrite it later: the owner of `dir`, or undefined when nothing
 * needs changing (not root, or a root-owned tree).
 */
export function serviceOwner(dir: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const st = statSync(dir);
    return st.uid === 0 ? undefined : { uid: st.uid, gid: st.gid };
  } catch {
    return undefined;
  }
}

export function writeReleases(rel: ReleaseRoot, file: ReleasesFile): void {
  writeAtomic(rel.releasesFile, JSON.stringify(file, null, 2) + '\n');
}

export function permanentVersion(rel: ReleaseRoot): string | null {
  if (!existsSync(rel.startData)) return null;
  return readFileSync(rel.startData, 'utf8').trim() || null;
}

export function setPermanent(rel: ReleaseRoot, vsn: string): void {
  writeAtomic(rel.startData, vsn + '\n');
}

/** Change one release's state; moving to permanent demotes the previous permanent to old. */
export function setState(rel: ReleaseRoot, vsn: string, state: ReleaseState, note?: string): ReleasesFile {
  const file = readReleases(rel);
  const now = new Date().toISOString();
  let entry = file.releases.find((r) => r.version === vsn);
  if (!entry) {
    entry = { version: vsn, state, installedAt: now, changedAt: now };
    file.releases.push(entry);
  }
  for (const r of file.releases) {
    if (r === entry) continue;
    if (state === 'permanent' && r.state === 'permanent') Object.assign(r, { state: 'old', changedAt: now });
    if (state === 'current' && r.state === 'current') Object.assign(r, { state: 'old', changedAt: now });
  }
  Object.assign(entry, { state, changedAt: now }, note === undefined ? {} : { note });
  writeReleases(rel, file);
  if (state === 'permanent') setPermanent(rel, vsn);
  return file;
}

/**
 * Remove the oldest `old` releases while more than `keep` are on disk. Never touches a
 * permanent, current or unpacked release, nor any version in `protect`. Returns the pruned versions.
 */
export function pruneReleases(rel: ReleaseRoot, keep: number, protect: Iterable<string>): string[] {
  const file = readReleases(rel);
  const safe = new Set([...protect, permanentVersion(rel) ?? '']);
  const victims = file.releases
    .filter((r) => r.state === 'old' && !safe.has(r.version))
    .sort((a, b) => a.changedAt.localeCompare(b.changedAt))
    .slice(0, Math.max(0, file.releases.length - keep));
  if (!victims.length) return [];
  for (const v of victims) rmSync(rel.versionDir(v.version), { recursive: true, force: true });
  file.releases = file.releases.filter((r) => !victims.includes(r));
  writeReleases(rel, file);
  return victims.map((v) => v.version);
}
