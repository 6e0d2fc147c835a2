// Crash reporters on real loopback sockets and a real crashing process: the webhook retries with
// backoff, gives up on a refusal, and never holds the exit past the deadline, even when the
// receiver never answers; the file report is written before the process exits, and the crash
// directory keeps only the newest reports.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildReport, FileReporter, listCrashes, WebhookReporter } from '../src/runtime/crash.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'slipway-crash-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A receiver on 127.0.0.1 that answers each POST with the next status of `plan` (null: never answers). */
async function receiver(plan: Array<number | null>): Promise<{ url: string; times: number[]; bodies: string[]; close(): Promise<void> }> {
  const times: number[] = [];
  const bodies: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      times.push(Date.now());
      bodies.push(body);
      const status = plan[Math.min(times.length - 1, plan.length - 1)];
      if (status !== null && status !== undefined) res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/crash`,
    times,
    bodies,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

const report = () => buildReport('uncaughtException', new Error('boom'), { name: 'orders', version: '1.0.0', lastLogs: ['{"msg":"last"}'] });

test('webhook: 503 twice, then 200: three attempts, waits doubling from backoffMs', async () => {
  const r = await receiver([503, 503, 200]);
  try {
    const hook = new WebhookReporter(r.url, { retries: 3, backoffMs: 100 });
    assert.equal(await hook.report(report(), Date.now() + 5000), true);
    assert.equal(hook.attempts, 3);
    assert.equal(r.times.length, 3);
    const gaps = [r.times[1]! - r.times[0]!, r.times[2]! - r.times[1]!];
    assert.ok(gaps[0]! >= 95 && gaps[1]! >= 195, `gaps ${gaps.join(', ')} ms: expected about 100 then 200`);
    assert.equal(JSON.parse(r.bodies[2]!).error.message, 'boom');
  } finally {
    await r.close();
  }
});

test('webhook: a refusal (400) is not retried; retries run out on 5xx', async () => {
  const refused = await receiver([400]);
  const failing = await receiver([500]);
  try {
    const once = new WebhookReporter(refused.url, { backoffMs: 10 });
    assert.equal(await once.report(report(), Date.now() + 5000), false);
    assert.equal(once.attempts, 1);
    const down = new WebhookReporter(failing.url, { retries: 2, backoffMs: 10 });
    assert.equal(await down.report(report(), Date.now() + 5000), false);
    assert.equal(down.attempts, 3);
  } finally {
    await Promise.all([refused.close(), failing.close()]);
  }
});

test('webhook: a receiver that never answers costs no more than the deadline', async () => {
  const r = await receiver([null]);
  try {
    const hook = new WebhookReporter(r.url, { retries: 5, backoffMs: 50 });
    const started = Date.now();
    assert.equal(await hook.report(report(), started + 400), false);
    const took = Date.now() - started;
    assert.ok(took >= 350 && took < 1500, `gave up after ${took} ms, deadline 400 ms`);
    assert.equal(r.times.length, 1, 'the one request waited until the deadline');
  } finally {
    await r.close();
  }
});

test('a crashing process with a hanging webhook: the file report is written and the process exits by the deadline', async () => {
  const r = await receiver([null]);
  const crashDir = path.join(tmp, 'crash');
  const script = path.join(tmp, 'crasher.ts');
  writeFileSync(
    script,
    [
      `import { FileReporter, installCrashHandlers, WebhookReporter } from ${JSON.stringify(path.join(here, '..', 'src', 'runtime', 'crash.ts'))};`,
      `installCrashHandlers({ name: 'orders', version: '1.0.0', deadlineMs: 600, reporters: [new FileReporter(${JSON.stringify(crashDir)}), new WebhookReporter(${JSON.stringify(r.url)}, { retries: 5, backoffMs: 50 })] });`,
      `setTimeout(() => { throw new Error('thrown on purpose'); }, 10);`,
      `setInterval(() => undefined, 1000);`,
    ].join('\n'),
  );
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let thrownAt = 0;
    const code = await new Promise<number | null>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', (c) => {
        clearTimeout(kill);
        resolve(c);
      });
      // The webhook's request arrives when the crash handler runs: time the exit from there.
      const poll = setInterval(() => {
        if (r.times.length && !thrownAt) thrownAt = r.times[0]!;
      }, 5);
      child.once('exit', () => clearInterval(poll));
    });
    const exitedAt = Date.now();
    assert.equal(code, 70, 'the crash exit code');
    assert.ok(thrownAt > 0, 'the webhook was called');
    assert.ok(exitedAt - thrownAt < 2500, `exited ${exitedAt - thrownAt} ms after the crash, deadline 600 ms`);
    const files = readdirSync(crashDir);
    assert.equal(files.length, 1);
    const saved = JSON.parse(readFileSync(path.join(crashDir, files[0]!), 'utf8'));
    assert.equal(saved.error.message, 'thrown on purpose');
    assert.equal(saved.kind, 'uncaughtException');
  } finally {
    await r.close();
  }
});

test('the file reporter keeps the newest reports only (a crash loop cannot fill the disk)', () => {
  const dir = path.join(tmp, 'kept');
  const files = new FileReporter(dir, 3);
  const written: string[] = [];
  for (let i = 0; i < 5; i++) {
    const r = report();
    r.at = new Date(Date.UTC(2026, 10, 27, 9, 0, i)).toISOString();
    r.error.message = `crash ${i}`;
    written.push(path.basename(files.report(r)));
  }
  writeFileSync(path.join(dir, 'notes.txt'), 'not a report');
  files.report(Object.assign(report(), { at: new Date(Date.UTC(2026, 10, 27, 9, 0, 9)).toISOString() }));
  const left = listCrashes(dir);
  assert.equal(left.length, 3);
  assert.deepEqual(left.slice(0, 2).map((c) => c.error), ['Error: crash 3', 'Error: crash 4'], 'the oldest went first');
  assert.ok(readdirSync(dir).includes('notes.txt'), 'other files are left alone');
  assert.ok(!readdirSync(dir).includes(written[0]!));
});
