// The database: SQLite in var/ by default, PostgreSQL when DATABASE_URL is postgres://.
import path from 'node:path';
import { CompiledQuery, Kysely, Migrator, PostgresDialect, SqliteAdapter, SqliteDialect, SqliteDriver, sql, type DatabaseConnection, type DialectAdapter, type Driver, type Logger as KyselyLogger, type Migration, type MigrationProvider, type SqliteDialectConfig } from 'kysely';
import SQLite from 'better-sqlite3';
import pg from 'pg';

export interface OrdersTable {
  id: string;
  item: string;
  quantity: number;
  price_cents: number;
  idempotency_key: string | null;
  request_hash: string | null;
  release: string;
  created_at: string;
}

export interface Database {
  orders: OrdersTable;
}

export type Db = Kysely<Database>;

export interface DbHandle {
  db: Db;
  kind: 'sqlite' | 'postgres';
  describe: string;
}

/** `log`: Kysely's query log hook (the example passes queryTracing's, so failed queries end their span). */
export function openDatabase(url: URL | null, varDir: string, poolSize: number, log?: KyselyLogger): DbHandle {
  if (url === null || url.protocol === 'sqlite:') {
    const file = url ? (url.pathname.startsWith('/') ? url.pathname : path.join(varDir, url.pathname)) : path.join(varDir, 'orders.db');
    const sqlite = new SQLite(file, { timeout: BUSY_TIMEOUT_MS });
    // Several workers and the migrate gate share the file.
    switchToWal(sqlite);
    sqlite.pragma('synchronous = NORMAL');
    return { db: new Kysely<Database>({ dialect: new MigrationSafeSqliteDialect({ database: sqlite }), log }), kind: 'sqlite', describe: `sqlite:${file}` };
  }
  const pool = new pg.Pool({ connectionString: url.toString(), max: poolSize, connectionTimeoutMillis: 2000 });
  // An idle client losing its server must not crash the worker; readiness reports it instead.
  pool.on('error', () => undefined);
  return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log }), kind: 'postgres', describe: `postgres://${url.host}${url.pathname}` };
}

const BUSY_TIMEOUT_MS = 5000;
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Workers opening a new file together each switch it to WAL. SQLite answers one of them BUSY at
 * once, without calling the busy handler: both hold a shared lock and want an exclusive one, and
 * waiting could deadlock. That one tries again after a short random pause (boot only, so a
 * blocking pause is fine), until the busy timeout.
 */
function switchToWal(sqlite: SQLite.Database): void {
  const until = Date.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      sqlite.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > until) throw err;
      Atomics.wait(pause, 0, 0, 5 + Math.random() * 20);
    }
  }
}

/**
 * Kysely runs SQLite migrations outside a transaction and takes no lock (it assumes one process).
 * Workers booting together each migrate the same file (migrateOnBoot): without a lock a second
 * one failed with "table already exists". Here migrations run in a transaction (SQLite has
 * transactional DDL: a failed migration also leaves the schema as it was), and transactions
 * begin IMMEDIATE, taking SQLite's write lock at once: the other workers wait (busy_timeout),
 * then find nothing left to do. (A deferred transaction that has read cannot wait for the lock in
 * WAL mode: it fails with "database is locked".)
 */
class MigrationSafeSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}
class MigrationSafeSqliteDialect extends SqliteDialect {
  constructor(private readonly sqliteConfig: SqliteDialectConfig) {
    super(sqliteConfig);
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.sqliteConfig);
  }
  override createAdapter(): DialectAdapter {
    return new MigrationSafeSqliteAdapter();
  }
}

const migrations: Record<string, Migration> = {
  '001_create_orders': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('orders')
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('item', 'varchar(200)', (c) => c.notNull())
        .addColumn('quantity', 'integer', (c) => c.notNull())
        .addColumn('price_cents', 'integer', (c) => c.notNull())
        .addColumn('idempotency_key', 'varchar(200)', (c) => c.unique())
        .addColumn('request_hash', 'varchar(64)')
        .addColumn('release', 'varchar(64)', (c) => c.notNull())
        .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('orders_created_at').on('orders').column('created_at').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('orders').execute();
    },
  },
};

/** Extra migrations a test or drill can add through MIGRATIONS_EXTRA (JSON {name: sql}) to exercise the gate. */
function extraMigrations(): Record<string, Migration> {
  const raw = process.env.ORDERS_EXTRA_MIGRATIONS;
  if (!raw) return {};
  const parsed = JSON.parse(raw) as Record<string, string>;
  return Object.fromEntries(
    Object.entries(parsed).map(([name, statement]) => [name, { up: async (db: Kysely<unknown>) => void (await sql.raw(statement).execute(db)) }]),
  );
}

const provider: MigrationProvider = { getMigrations: async () => ({ ...migrations, ...extraMigrations() }) };

export function migrator(db: Db): Migrator {
  return new Migrator({ db, provider });
}

export async function migrate(db: Db): Promise<{ applied: string[]; pending: string[] }> {
  const { error, results } = await migrator(db).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`${failed ?? 'migration'}: ${(error as Error).message ?? error}`);
  }
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName), pending: [] };
}

export async function pendingMigrations(db: Db): Promise<string[]> {
  const all = await migrator(db).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}

export async function ping(db: Db): Promise<void> {
  await sql`select 1`.execute(db);
}
