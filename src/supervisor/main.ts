// releases/VSN/supervisor.mjs: what `bin/APP start` execs. Only the supervisor, without the
// command-line client, so the long-lived process loads (and keeps in memory) no more than it runs.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSupervisor } from './index.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
await runSupervisor({
  root: process.env.RELEASE_ROOT ?? path.resolve(here, '..', '..'),
  version: process.env.RELEASE_VSN ?? path.basename(here),
  node: process.env.RELEASE_NODE ?? process.execPath,
  echo: process.env.SLIPWAY_DAEMON !== '1',
});
