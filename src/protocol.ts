// The one typed protocol between the supervisor and its workers (IPC over the fork channel),
// and between control clients and the supervisor (newline-delimited JSON on control.sock).
// The runtime and the supervisor both import this file and nothing else of each other.

export type WorkerState = 'booting' | 'ready' | 'draining' | 'stopped';

/** Supervisor → worker. */
export type ToWorker =
  | { t: 'rpc'; id: number; expr: string }
  /**
   * Drain and exit. `keepListening`: the service keeps accepting on the shared socket through
   * other workers (a release switch, an aborted one), so no load balancer has to be given the
   * drain delay: it is skipped.
   */
  | { t: 'drain'; reason: string; keepListening?: boolean }
  /**
   * An old worker at a release switch: take no new connection and answer every request with
   * `Connection: close`, so its clients move to the new release; it exits when told to drain.
   */
  | { t: 'retire' }
  /** A worker started with holdAccept: the switch has come, listen on the shared socket now. */
  | { t: 'start-accepting' }
  | { t: 'remote'; id: number; path: string; cookie: string }
  | { t: 'log-level'; level: LogLevel }
  | { t: 'request-log'; mode: RequestLogMode }
  /** The log file was rotated: open SLIPWAY_LOG_FILE again. */
  | { t: 'log-reopen' }
  | { t: 'metrics-collect'; id: number }
  | { t: 'metrics-response'; id: number; text: string };

export type FatalKind = 'config' | 'boot' | 'migration' | 'listen' | 'crash';

/** Worker → supervisor. */
export type FromWorker =
  | { t: 'state'; state: WorkerState; failing?: string }
  | { t: 'heartbeat'; rss: number; heapUsed: number; inFlight: number }
  | { t: 'rpc-result'; id: number; ok: true; json: string | null }
  | { t: 'rpc-result'; id: number; ok: false; error: string }
  | { t: 'remote-open'; id: number; ok: boolean; error?: string }
  | { t: 'fatal'; kind: FatalKind; message: string }
  | { t: 'cut'; requests: Array<{ method: string; url: string; ageMs: number }> }
  | { t: 'metrics-data'; id: number; json: string | null }
  | { t: 'metrics-request'; id: number }
  /** Writing `bytes` more would take the log file past its size limit: rotate it, then log-reopen. */
  | { t: 'log-full'; bytes: number };

/** pino's levels: LOG_LEVEL, `bin/NAME log-level LEVEL`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Which requests get a log line: SLIPWAY_REQUEST_LOG, `bin/NAME request-log MODE` (the default first). */
export const REQUEST_LOG_MODES = ['on', 'all', 'errors', 'off'] as const;
export type RequestLogMode = (typeof REQUEST_LOG_MODES)[number];

/** Environment a worker is started with; the runtime reads it, the supervisor writes it. */
export const WorkerEnv = {
  mode: 'SLIPWAY_MODE', // worker | eval | migrate | standalone
  listenFd: 'SLIPWAY_LISTEN_FD',
  workerId: 'SLIPWAY_WORKER_ID',
  stopTimeoutMs: 'SLIPWAY_STOP_TIMEOUT_MS',
  drainDelayMs: 'SLIPWAY_DRAIN_DELAY_MS',
  heartIntervalMs: 'SLIPWAY_HEART_INTERVAL_MS',
  /** "1" for a worker started by a release switch: once ready it waits for start-accepting to listen. */
  holdAccept: 'SLIPWAY_HOLD_ACCEPT',
  evalExpr: 'SLIPWAY_EVAL',
  /** Set under `daemon`: the worker appends its log lines to this file itself (see supervisor/logs.ts). */
  logFile: 'SLIPWAY_LOG_FILE',
  logMaxBytes: 'SLIPWAY_LOG_FILE_MAX_BYTES',
  /** The level last set with `bin/NAME log-level`: workers started after it (restarts, upgrades) take it over LOG_LEVEL. */
  logLevel: 'SLIPWAY_LOG_LEVEL',
  /** The mode last set with `bin/NAME request-log`: workers started after it take it over SLIPWAY_REQUEST_LOG. */
  requestLog: 'SLIPWAY_REQUEST_LOG_RUNTIME',
} as const;

/** Control socket request (client → supervisor). One JSON object per line. */
export interface ControlRequest {
  cookie: string;
  cmd: ControlCommand;
  args?: Record<string, unknown>;
}

export type ControlCommand =
  | 'ping'
  | 'status'
  | 'stop'
  | 'restart'
  | 'rpc'
  | 'remote'
  | 'upgrade'
  | 'rollback'
  | 'log-level'
  | 'request-log'
  | 'metrics';

/** Control socket response. `progress` lines may precede the final `ok`/`error` line. */
export type ControlResponse =
  | { ok: true; result: unknown }
  | { ok: false; error: string; code?: string }
  | { progress: string };

export interface WorkerStatus {
  id: number;
  pid: number | undefined;
  version: string;
  state: WorkerState;
  uptimeMs: number;
  restarts: number;
  rss: number | undefined;
  heapUsed: number | undefined;
  inFlight: number | undefined;
}

export interface SupervisorStatus {
  name: string;
  pid: number;
  version: string;
  permanent: string | null;
  uptimeMs: number;
  listen: { host: string; port: number; activated: boolean };
  state: 'starting' | 'running' | 'upgrading' | 'stopping';
  workers: WorkerStatus[];
  restarts: number;
  /** An upgrade in its bake period: permanent at `until`, rolled back on a crash or readiness failure. */
  bake: { version: string; previous: string; until: string } | null;
  events: Array<{ at: string; msg: string }>;
}

/** Written to $RELEASE_TMP/supervisor.json at boot: what local tools need without the cookie. */
export interface SupervisorInfo {
  pid: number;
  name: string;
  version: string;
  host: string;
  port: number;
  startedAt: string;
}
