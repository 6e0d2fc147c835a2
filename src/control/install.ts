// `bin/APP install TARBALL` and `bin/APP releases`.
// A tarball is verified (sha256, entry paths, app name, per-file checksums) in a temp dir under
// releases/ and only then renamed into releases/VSN: a bad tarball leaves nothing behind.
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { ReleaseManifest, ReleaseRoot } from '../release/layout.ts';
import { VERSION_PATTERN } from '../release/layout.ts';
import { readReleases, setState, permanentVersion, pruneReleases, serviceOwner } from '../release/releases-file.ts';
import { table } from './format.ts';
import { sha256File } from '../release/checksum.ts';

type Die = (msg: string, code?: number) => never;

/** Why an entry may not be unpacked, or undefined when it is fine. */
export function unsafeEntry(p: string, type: string, linkpath: string | undefined): string | undefined {
  if (path.isAbsolute(p) || /^[A-Za-z]:/.test(p)) return `absolute path ${p}`;
  const parts = p.split(/[\\/]+/);
  if (parts.includes('..')) return `path escapes the release: ${p}`;
  const top = parts[0] === '.' ? parts[1] : parts[0];
  if (!['bin', 'releases', 'node', ''].includes(top ?? '')) return `unexpected top-level entry ${p}`;
  if (type === 'SymbolicLink' || type === 'Link') {
    if (!linkpath) return `link without target: ${p}`;
    if (type === 'Link') return `hard link ${p}`;
    if (path.isAbsolute(linkpath)) return `link ${p} points outside (${linkpath})`;
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(p), linkpath));
    if (target.startsWith('..')) return `link ${p} points outside (${linkpath})`;
  }
  if (!['File', 'OldFile', 'Directory', 'SymbolicLink', 'ContiguousFile'].includes(type)) return `entry type ${type} not allowed: ${p}`;
  return undefined;
}

export interface InstallResult {
  name: string;
  version: string;
  path: string;
  /** Old releases removed to keep keepReleases on disk. */
  pruned: string[];
}

export async function installTarball(rel: ReleaseRoot, appName: string, tarball: string, opts: { sha256?: string; force?: boolean } = {}): Promise<InstallResult> {
  if (!existsSync(tarball)) throw new Error(`install: ${tarball}: no such file`);
  let expected = opts.sha256;
  if (!expected) {
    const sumFile = `${tarball}.sha256`;
    if (!existsSync(sumFile)) throw new Error(`install: ${sumFile} is missing (or pass --sha256 HEX)`);
    expected = readFileSync(sumFile, 'utf8').trim().split(/\s+/)[0];
  }
  if (!expected || !/^[0-9a-f]{64}$/i.test(expected)) throw new Error('install: the .sha256 file does not hold a sha256 checksum');
  const actual = await sha256File(tarball);
  if (actual !== expected.toLowerCase()) throw new Error(`install: checksum mismatch for ${path.basename(tarball)} (expected ${expected.slice(0, 12)}…, got ${actual.slice(0, 12)}…): corrupted or tampered tarball`);

  const tar = await import('tar'); // only install needs it: the supervisor never loads it
  // First pass: list and vet every entry without writing anything.
  const versions = new Set<string>();
  let bad: string | undefined;
  try {
    await tar.t({
      file: tarball,
      strict: true,
      onReadEntry: (e) => {
        bad ??= unsafeEntry(e.path, e.type, e.linkpath);
        const m = /^(?:\.\/)?releases\/([^/]+)\//.exec(e.path);
        if (m && m[1]) versions.add(m[1]);
      },
    });
  } catch (err) {
    throw new Error(`install: ${path.basename(tarball)} is not a readable .tar.gz (${(err as Error).message})`);
  }
  if (bad) throw new Error(`install: refused ${path.basename(tarball)}: ${bad}`);
  if (versions.size !== 1) throw new Error(`install: ${path.basename(tarball)} must hold exactly one releases/VSN/ directory, found ${versions.size}`);
  const vsn = [...versions][0]!;
  if (!VERSION_PATTERN.test(vsn)) throw new Error(`install: bad version name "${vsn}"`);
  if (existsSync(rel.versionDir(vsn)) && !opts.force) throw new Error(`install: release ${vsn} is already installed (use --force to replace it)`);
  if (opts.force && (permanentVersion(rel) === vsn || rel.info()?.version === vsn)) throw new Error(`install: release ${vsn} is running or permanent; it cannot be replaced`);

  const tmp = mkdtempSync(path.join(rel.releasesDir, '.install-'));
  try {
    // As root in a release root owned by the service user: the files go to that user (see serviceOwner).
    const owner = serviceOwner(rel.root);
    await tar.x({ file: tarball, cwd: tmp, strict: true, preservePaths: false, ...(owner ? { uid: owner.uid, gid: owner.gid, preserveOwner: false } : {}), filter: (p) => /^(?:\.\/)?releases\/[^/]+\/./.test(p) || /^(?:\.\/)?releases\/[^/]+\/?$/.test(p) });
    const dir = path.join(tmp, 'releases', vsn);
    let manifest: ReleaseManifest;
    try {
      manifest = JSON.parse(readFileSync(path.join(dir, 'release.json'), 'utf8')) as ReleaseManifest;
    } catch {
      throw new Error(`install: releases/${vsn}/release.json is missing or unreadable`);
    }
    if (manifest.name !== appName) throw new Error(`install: ${path.basename(tarball)} is a release of "${manifest.name}", not "${appName}"`);
    if (manifest.version !== vsn) throw new Error(`install: release.json says version ${manifest.version}, directory says ${vsn}`);
    for (const [file, sum] of Object.entries(manifest.files)) {
      const f = path.join(dir, file);
      if (!existsSync(f)) throw new Error(`install: ${file} listed in release.json is missing`);
      if ((await sha256File(f)) !== sum) throw new Error(`install: ${file} does not match its checksum in release.json`);
    }
    if (opts.force) rmSync(rel.versionDir(vsn), { recursive: true, force: true });
    renameSync(dir, rel.versionDir(vsn));
    setState(rel, vsn, 'unpacked', `installed from ${path.basename(tarball)}`);
    const keep = Number(process.env.SLIPWAY_KEEP_RELEASES) || manifest.settings.keepReleases;
    const pruned = pruneReleases(rel, keep, [vsn, rel.info()?.version ?? '']);
    return { name: manifest.name, version: vsn, path: rel.versionDir(vsn), pruned };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}


export function installCommand(program: Command, rel: ReleaseRoot, name: string, die: Die): void {
  program
    .command('install')
    .description('verify a release tarball (.sha256 beside it, safe paths, same app) and unpack it to releases/VSN (state: unpacked)')
    .argument('<tarball>', `path to ${name}-VSN.tar.gz`)
    .option('--sha256 <hex>', 'expected checksum, instead of reading TARBALL.sha256')
    .option('--force', 'replace an installed release that is neither running nor permanent')
    .option('--json', 'print the result as JSON')
    .action(async (tarball: string, opts: { sha256?: string; force?: boolean; json?: boolean }) => {
      try {
        const r = await installTarball(rel, name, path.resolve(tarball), opts);
        const pruned = r.pruned.length ? ` (pruned old: ${r.pruned.join(', ')})` : '';
        process.stdout.write(opts.json ? JSON.stringify(r) + '\n' : `${name}: installed ${r.version} (unpacked)${pruned}; next: bin/${name} upgrade ${r.version}\n`);
      } catch (err) {
        die((err as Error).message.replace(/^install: /, 'install: '));
      }
    });
}

export function releasesCommand(program: Command, rel: ReleaseRoot, name: string, _die: Die): void {
  program
    .command('releases')
    .description('the releases on disk with their state (unpacked, current, permanent, old) and install time')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const file = readReleases(rel);
      const serving = rel.info()?.version;
      if (opts.json) return void process.stdout.write(JSON.stringify({ serving: serving ?? null, releases: file.releases }, null, 2) + '\n');
      const rows = [['VERSION', 'STATE', 'INSTALLED', 'CHANGED', 'NOTE']];
      for (const r of file.releases) rows.push([(r.version === serving ? '* ' : '  ') + r.version, r.state, r.installedAt, r.changedAt, r.note ?? '']);
      process.stdout.write(`${table(rows)}\n${serving ? `\n* serving now (${name})\n` : ''}`);
    });
}
