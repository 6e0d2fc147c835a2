// `slipway release`: bundle the app and the supervisor with esbuild, lay out the release as in
// DESIGN.md, and pack the tarball with its .sha256. The release is assembled in a temp directory
// and renamed into place, so a failed build never leaves a half-written release.
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import * as tar from 'tar';
import { binScript, envSh } from '../control/bin-script.ts';
import { ReleaseRoot, VERSION_PATTERN, type ReleaseManifest } from '../release/layout.ts';
import { readCookie } from '../release/cookie.ts';
import { setState } from '../release/releases-file.ts';
import { sha256File } from '../release/checksum.ts';
import { BuildError, loadProject, settingsOf, type ReleaseConfig } from './config.ts';

export { BuildError, loadProject, ReleaseConfigSchema, settingsOf, type ReleaseConfig, type AppProject } from './config.ts';

const SLIPWAY_SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface BuildOptions {
  /** The app directory (with package.json). */
  dir: string;
  version?: string;
  env?: string;
  includeNode?: boolean;
  /** Extra overlay directory, copied over releases/VSN after the configured one. */
  overlay?: string;
  /** Output root instead of <dir>/_build/<env>. */
  out?: string;
  progress?: (msg: string) => void;
}

export interface BuildResult {
  name: string;
  version: string;
  env: string;
  releaseRoot: string;
  tarball: string;
  sha256: string;
  bytes: number;
  ms: number;
}

const BANNER = [
  "import { createRequire as __slipwayCreateRequire } from 'node:module';",
  "import { fileURLToPath as __slipwayFileURLToPath } from 'node:url';",
  'const require = __slipwayCreateRequire(import.meta.url);',
  'const __filename = __slipwayFileURLToPath(import.meta.url);',
  "const __dirname = __slipwayFileURLToPath(new URL('.', import.meta.url));",
].join('\n');

/** `import('prom-client')` in the supervisor becomes a require() of lib/prom-client.cjs (no ES module loader). */
const PROM_CLIENT_APART: esbuild.Plugin = {
  name: 'prom-client-apart',
  setup(b) {
    b.onResolve({ filter: /^prom-client$/ }, () => ({ path: 'prom-client', namespace: 'prom-client-apart' }));
    b.onLoad({ filter: /.*/, namespace: 'prom-client-apart' }, () => ({ contents: "module.exports = require('./lib/prom-client.cjs');", loader: 'js' }));
    b.onResolve({ filter: /^\.\/lib\/prom-client\.cjs$/ }, (a) => ({ path: a.path, external: true }));
  },
};

export async function buildRelease(opts: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const progress = opts.progress ?? (() => undefined);
  const project = loadProject(opts.dir);
  const cfg = project.config;
  const version = opts.version ?? project.version;
  if (!VERSION_PATTERN.test(version)) throw new BuildError(`--version: "${version}" is not a valid version (letters, digits, . + _ -)`);
  const buildEnv = opts.env ?? 'prod';
  if (!/^[a-z][a-z0-9_-]*$/.test(buildEnv)) throw new BuildError(`--env: "${buildEnv}" is not a valid environment name`);
  const outRoot = opts.out ? path.resolve(opts.out) : path.join(opts.dir, '_build', buildEnv);
  const relRoot = path.join(outRoot, 'rel', cfg.name);
  const rel = new ReleaseRoot(relRoot);
  mkdirSync(rel.releasesDir, { recursive: true });

  const stage = mkdtempSync(path.join(rel.releasesDir, `.build-${version}-`));
  try {
    const entry = path.resolve(opts.dir, cfg.entry);
    if (!existsSync(entry)) throw new BuildError(`slipway.entry: ${cfg.entry} does not exist`);
    const runtimeConfig = cfg.runtimeConfig ? path.resolve(opts.dir, cfg.runtimeConfig) : defaultRuntimeConfig(opts.dir);
    if (cfg.runtimeConfig && !existsSync(runtimeConfig!)) throw new BuildError(`slipway.runtimeConfig: ${cfg.runtimeConfig} does not exist`);

    progress(`bundling ${cfg.name} ${version} (esbuild)`);
    const wrapper = [
      `import app from ${JSON.stringify(entry)};`,
      runtimeConfig ? `import config from ${JSON.stringify(runtimeConfig)};` : 'const config = undefined;',
      `import { runApp } from 'slipway/runtime';`,
      `runApp(app, config).catch((err) => { console.error(err); process.exit(1); });`,
    ].join('\n');
    const common: esbuild.BuildOptions = {
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: 'linked',
      banner: { js: BANNER },
      logLevel: 'silent',
      legalComments: 'none',
      // Only values that come from the build's inputs, never from its environment.
      define: { __SLIPWAY_BUILD__: JSON.stringify({ name: cfg.name, version, env: buildEnv }), 'process.env.NODE_ENV': 'process.env.NODE_ENV' },
    };
    const externals = [...cfg.external, ...cfg.optionalExternal];
    // Code splitting: what the app loads with import() only when asked (e.g. the OpenTelemetry
    // SDK when OTEL_* ask for export) lands in app/chunks/ and costs nothing at boot.
    await runEsbuild({
      ...common,
      stdin: { contents: wrapper, resolveDir: opts.dir, sourcefile: 'app.ts', loader: 'ts' },
      outdir: path.join(stage, 'app'),
      splitting: true,
      entryNames: 'app',
      chunkNames: 'chunks/[name]-[hash]',
      outExtension: { '.js': '.mjs' },
      external: externals,
    });
    progress('bundling the supervisor and control client');
    // slipway.mjs: every command but `start`, its rarely used parts in lib/ chunks.
    await runEsbuild({
      ...common,
      entryPoints: { slipway: path.join(SLIPWAY_SRC, 'control', 'main.ts') },
      outdir: stage,
      splitting: true,
      chunkNames: 'lib/[name]-[hash]',
      outExtension: { '.js': '.mjs' },
      external: ['unix-dgram'],
    });
    // supervisor.cjs: what `start` execs, on its own and as CommonJS (see src/supervisor/main.ts).
    // prom-client, which it loads only when /metrics is scraped, is its own entry (two bundles, no
    // shared chunks): inlined, its source alone would be ~0.4 MB of the supervisor's resident
    // memory for its whole life.
    await runEsbuild({
      ...common,
      format: 'cjs',
      banner: {},
      entryPoints: {
        supervisor: path.join(SLIPWAY_SRC, 'supervisor', 'main.ts'),
        'lib/prom-client': createRequire(path.join(SLIPWAY_SRC, '..', 'package.json')).resolve('prom-client'),
      },
      outdir: stage,
      outExtension: { '.js': '.cjs' },
      external: ['unix-dgram'],
      plugins: [PROM_CLIENT_APART],
    });
    // bin/APP is written once, with the first release: scripts of releases built before
    // supervisor.cjs exec supervisor.mjs.
    writeFileSync(path.join(stage, 'supervisor.mjs'), "import { createRequire } from 'node:module';\ncreateRequire(import.meta.url)('./supervisor.cjs');\n");

    progress(`copying native/external packages: ${[...cfg.external, 'unix-dgram'].join(', ')}`);
    const appRequire = createRequire(path.join(opts.dir, 'package.json'));
    const copied = new Set<string>();
    for (const dep of cfg.external) copyPackage(appRequire, dep, path.join(stage, 'app', 'node_modules'), copied, false);
    for (const dep of cfg.optionalExternal) copyPackage(appRequire, dep, path.join(stage, 'app', 'node_modules'), copied, true);
    copyPackage(createRequire(path.join(SLIPWAY_SRC, '..', 'package.json')), 'unix-dgram', path.join(stage, 'node_modules'), new Set(), true);

    writeFileSync(path.join(stage, 'env.sh'), envSh(cfg.name, overlayEnv(opts.dir, cfg)), { mode: 0o644 });
    for (const overlay of [cfg.overlay && path.resolve(opts.dir, cfg.overlay), opts.overlay && path.resolve(opts.overlay)]) {
      if (!overlay) continue;
      if (!existsSync(overlay)) throw new BuildError(`overlay ${overlay} does not exist`);
      progress(`applying overlay ${path.relative(opts.dir, overlay) || overlay}`);
      cpSync(overlay, stage, { recursive: true });
    }

    const manifest: ReleaseManifest = {
      name: cfg.name,
      version,
      env: buildEnv,
      builtAt: new Date().toISOString(),
      node: process.version,
      slipway: readSlipwayVersion(),
      settings: settingsOf(cfg),
      files: checksums(stage),
    };
    writeFileSync(path.join(stage, 'release.json'), JSON.stringify(manifest, null, 2) + '\n');

    // Swap the new release directory in.
    const finalDir = rel.versionDir(version);
    if (existsSync(finalDir)) rmSync(finalDir, { recursive: true, force: true });
    renameSync(stage, finalDir);

    const binDir = path.join(relRoot, 'bin');
    mkdirSync(binDir, { recursive: true });
    writeFileSync(path.join(binDir, cfg.name), binScript(cfg.name), { mode: 0o755 });
    chmodSync(path.join(binDir, cfg.name), 0o755);
    const includeNode = opts.includeNode ?? cfg.includeNode;
    if (includeNode) {
      progress(`including the Node runtime ${process.version} (${process.execPath})`);
      mkdirSync(path.join(relRoot, 'node', 'bin'), { recursive: true });
      copyFileSync(process.execPath, path.join(relRoot, 'node', 'bin', 'node'));
      chmodSync(path.join(relRoot, 'node', 'bin', 'node'), 0o755);
    } else {
      rmSync(path.join(relRoot, 'node'), { recursive: true, force: true });
    }
    for (const d of ['tmp', 'log', 'var']) mkdirSync(path.join(relRoot, d), { recursive: true });
    // The build's own release directory boots the version just built, as mix's does.
    setState(rel, version, 'permanent', 'built');
    readCookie(rel, true);

    progress('packing the tarball');
    const tarball = await packTarball(relRoot, outRoot, cfg, version, includeNode);
    const sha = await sha256File(tarball);
    writeFileSync(`${tarball}.sha256`, `${sha}  ${path.basename(tarball)}\n`);
    return { name: cfg.name, version, env: buildEnv, releaseRoot: relRoot, tarball, sha256: sha, bytes: statSync(tarball).size, ms: Date.now() - started };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

async function runEsbuild(options: esbuild.BuildOptions): Promise<void> {
  try {
    await esbuild.build(options);
  } catch (err) {
    const first = (err as esbuild.BuildFailure).errors?.[0];
    if (first) throw new BuildError(`esbuild: ${first.location ? `${first.location.file}:${first.location.line}: ` : ''}${first.text}`);
    throw err;
  }
}

function defaultRuntimeConfig(dir: string): string | undefined {
  for (const f of ['config/runtime.ts', 'config/runtime.js', 'config/runtime.mjs']) if (existsSync(path.join(dir, f))) return path.join(dir, f);
  return undefined;
}

/** rel/env.sh in the app, if any: the project's own additions to every release's env.sh. */
function overlayEnv(dir: string, _cfg: ReleaseConfig): string {
  const f = path.join(dir, 'rel', 'env.sh');
  return existsSync(f) ? readFileSync(f, 'utf8') : '';
}

/** Dependencies of native packages that only download or compile the addon: never loaded at run time. */
const BUILD_TIME_ONLY = new Set(['prebuild-install', '@mapbox/node-pre-gyp', 'node-pre-gyp', 'node-gyp', 'nan', 'node-addon-api']);

/** Copy a package and its production dependencies; for native packages only what runs. */
function copyPackage(req: NodeJS.Require, name: string, into: string, seen: Set<string>, optional: boolean): void {
  if (seen.has(name)) return;
  let pkgJson: string;
  try {
    pkgJson = req.resolve(`${name}/package.json`);
  } catch {
    if (optional) return;
    throw new BuildError(`slipway.external: cannot find package "${name}" (is it installed?)`);
  }
  seen.add(name);
  const src = path.dirname(pkgJson);
  const native = existsSync(path.join(src, 'binding.gyp'));
  const dest = path.join(into, name);
  cpSync(src, dest, {
    recursive: true,
    dereference: true,
    filter: (p) => {
      const rel = path.relative(src, p);
      if (rel === '') return true;
      const top = rel.split(path.sep)[0]!;
      if (top === 'node_modules') return false;
      if (native) {
        if (['deps', 'src', 'test', 'benchmark', 'docs'].includes(top)) return false;
        if (top === 'build') return statSync(p).isDirectory() ? !/obj|\.deps/.test(rel) : p.endsWith('.node');
      }
      return true;
    },
  });
  const meta = JSON.parse(readFileSync(pkgJson, 'utf8')) as { dependencies?: Record<string, string> };
  const depReq = createRequire(pkgJson);
  for (const dep of Object.keys(meta.dependencies ?? {})) if (!BUILD_TIME_ONLY.has(dep)) copyPackage(depReq, dep, into, seen, false);
}

function checksums(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out[path.relative(dir, p).split(path.sep).join('/')] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

async function packTarball(relRoot: string, outRoot: string, cfg: ReleaseConfig, version: string, includeNode: boolean): Promise<string> {
  const tarball = path.join(outRoot, `${cfg.name}-${version}.tar.gz`);
  const tmp = `${tarball}.${process.pid}.tmp`;
  // The tarball boots on its own: bin, this release, and start.data/RELEASES naming it permanent.
  // It never carries the COOKIE: each installation makes its own.
  const stage = mkdtempSync(path.join(outRoot, '.pack-'));
  try {
    mkdirSync(path.join(stage, 'releases'), { recursive: true });
    writeFileSync(path.join(stage, 'releases', 'start.data'), version + '\n');
    const now = new Date().toISOString();
    writeFileSync(path.join(stage, 'releases', 'RELEASES'), JSON.stringify({ releases: [{ version, state: 'permanent', installedAt: now, changedAt: now, note: 'from tarball' }] }, null, 2) + '\n');
    cpSync(path.join(relRoot, 'bin'), path.join(stage, 'bin'), { recursive: true });
    cpSync(path.join(relRoot, 'releases', version), path.join(stage, 'releases', version), { recursive: true });
    if (includeNode) cpSync(path.join(relRoot, 'node'), path.join(stage, 'node'), { recursive: true });
    await tar.c({ gzip: true, file: tmp, cwd: stage, portable: true }, ['bin', 'releases', ...(includeNode ? ['node'] : [])]);
    renameSync(tmp, tarball);
    return tarball;
  } finally {
    rmSync(stage, { recursive: true, force: true });
    rmSync(tmp, { force: true });
  }
}

function readSlipwayVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(SLIPWAY_SRC, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
