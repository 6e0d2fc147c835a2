// Lets examples/ (and tests) import `slipway/...` from this checkout, as an installed user would.
import { symlinkSync, lstatSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const link = path.join(root, 'node_modules', 'slipway');
mkdirSync(path.dirname(link), { recursive: true });
try {
  lstatSync(link);
} catch {
  symlinkSync('..', link, 'dir');
}
