// `npm test`: every test file under test/ through node's test runner (TypeScript via tsx).
// Files run one at a time: several start real releases, PostgreSQL or systemd, on a 2-core machine.
// `npm test -- test/release.test.ts` runs a subset.
import { readdirSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
if (process.env.SLIPWAY_SKIP_SYSTEM_DEPS !== '1') {
  const deps = spawnSync('sh', [path.join(root, 'scripts', 'system-deps.sh')], { stdio: 'inherit' });
  if (deps.status !== 0) process.exit(deps.status ?? 1);
}
const args = process.argv.slice(2);
const files = args.length
  ? args
  : readdirSync(path.join(root, 'test'))
      .filter((f) => f.endsWith('.test.ts'))
      .sort()
      .map((f) => path.join('test', f));
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=600000', '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, OTEL_TRACES_EXPORTER: process.env.OTEL_TRACES_EXPORTER ?? 'none', OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none' },
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
