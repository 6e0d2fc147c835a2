// releases/VSN/supervisor.cjs: what `bin/APP start` execs. Only the supervisor, without the
// command-line client, so the long-lived process loads (and keeps in memory) no more than it runs.
// Bundled as CommonJS: Node's ES module loader alone is ~1.9 MB of resident memory here.
import path from 'node:path';
import { runSupervisor } from './index.ts';

const here = path.dirname(path.resolve(process.argv[1]!));
runSupervisor({
  root: process.env.RELEASE_ROOT ?? path.resolve(here, '..', '..'),
  version: process.env.RELEASE_VSN ?? path.basename(here),
  node: process.env.RELEASE_NODE ?? process.execPath,
  echo: process.env.SLIPWAY_DAEMON !== '1',
}).catch((err: unknown) => {
  process.stderr.write(`supervisor: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
