// The alternative to Slipway's production hooks, as a Node team glues it today: the same GET /hello
// as the orders example (and its x-release header), on plain Fastify, with Fastify's own pino
// request logging and the fastify-metrics plugin (prom-client), run as a plain node process.
//
//   GLUE=on   Fastify's logger at info (its two lines per request: "incoming request" and
//             "request completed"), written by pino.destination({ sync: false }) to GLUE_LOG_FILE,
//             and fastify-metrics with its defaults (route histogram and summary by method, route
//             and status; prom-client's default metrics) with GET /metrics.
//   GLUE=off  neither: the baseline "glue" is compared with.
//   GLUE=log, GLUE=metrics   one of the two (to see where the cost goes).
//
// It carries less than Slipway's defaults: no trace ids, no request context through awaits (app
// lines outside `req.log` lose the request id), no release in the lines, no secret redaction.
// Bundled by bench/hooks.ts with esbuild (as a release bundles the app) and started there.
import Fastify from 'fastify';
import fastifyMetrics from 'fastify-metrics';
import pino from 'pino';

const glue = process.env.GLUE ?? 'on';
const logs = glue === 'on' || glue === 'log';
const withMetrics = glue === 'on' || glue === 'metrics';
const port = Number(process.env.PORT);
const logFile = process.env.GLUE_LOG_FILE;
if (!['on', 'off', 'log', 'metrics'].includes(glue) || !Number.isInteger(port) || port <= 0 || (logs && !logFile)) {
  process.stderr.write('fastify-glue: set GLUE to on, off, log or metrics, PORT, and GLUE_LOG_FILE when logging\n');
  process.exit(2);
}

const app = Fastify({ logger: logs ? { level: 'info', stream: pino.destination({ dest: logFile, sync: false }) } : false });
// A CommonJS module with __esModule: from an ES module its default import is module.exports.
if (withMetrics) await app.register(fastifyMetrics.default, { endpoint: '/metrics' });
app.addHook('onRequest', (_req, reply, done) => {
  reply.header('x-release', '1.0.0');
  done();
});
app.get('/hello', async () => ({ hello: 'world', release: '1.0.0' }));
await app.listen({ host: '127.0.0.1', port });
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
