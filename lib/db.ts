/**
 * One place that knows the two dialects. SQLite is the embedded default: WAL, a generous busy timeout and
 * in-process serialisation of write transactions (SQLite has one writer; queueing here is cheaper than
 * SQLITE_BUSY retries). PostgreSQL is for production and scale-out.
 */
import { createRequire } from 'node:module';
import { ConnectionAcquireTimeoutError, ConnectionError, Sequelize, TimeoutError, Transaction } from 'sequelize';
import type { Options } from 'sequelize';
import type sqlite3Types from 'sqlite3';

const require = createRequire(import.meta.url);

/** The database kinds the relay runs on. */
export type Dialect = 'sqlite' | 'postgres';

/** An open database (from {@link openDatabase}): the sequelize instance and a transaction runner. */
export interface Database {
  sequelize: Sequelize;
  dialect: Dialect;
  /** Run `fn` in a transaction; on SQLite transactions are queued so they never contend for the write lock. */
  transaction<T>(fn: (t: Transaction) => Promise<T>): Promise<T>;
  /** The PostgreSQL connection string (for LISTEN/NOTIFY), undefined on SQLite. */
  postgresUrl: string | undefined;
  /** Close every connection. */
  close(): Promise<void>;
}

const SQLITE_BUSY_TIMEOUT_MS = 15_000;

/**
 * SQLite's `synchronous` level in WAL mode (`SQLITE_SYNCHRONOUS`). `normal` (the default): a commit is
 * durable once it is in the WAL file, which survives a crash of the process but not a power loss or an OS
 * crash (the last commits before it may roll back; the database stays consistent). `full`: every commit
 * also fsyncs the WAL, which survives both, at a cost per commit that depends on the disk (see
 * docs/performance.md, `npm run bench -- --scenario sqlite-sync`).
 */
export type SqliteSynchronous = 'normal' | 'full';

/** The accepted values of {@link SqliteSynchronous}. */
export const SQLITE_SYNCHRONOUS_LEVELS: readonly SqliteSynchronous[] = ['normal', 'full'];

/** Options of {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** sequelize's query logging (off). */
  logging?: Options['logging'];
  /** PostgreSQL pool (`{ max: 10, min: 0, idle: 10 000, acquire: 30 000 }`); ignored on SQLite. */
  pool?: Options['pool'];
  /** SQLite `PRAGMA synchronous` (`normal`); ignored on PostgreSQL. See {@link SqliteSynchronous}. */
  sqliteSynchronous?: SqliteSynchronous;
}

/** sqlite3, with every new connection configured the same way (sequelize opens one per transaction; see below). */
function sqliteModule(synchronous: SqliteSynchronous) {
  const pragmas = `PRAGMA journal_mode=WAL; PRAGMA synchronous=${synchronous === 'full' ? 'FULL' : 'NORMAL'};`;
  const sqlite3 = require('sqlite3') as typeof sqlite3Types;
  class Database extends sqlite3.Database {
    constructor(filename: string, mode: number, callback: (err: Error | null) => void) {
      super(filename, mode, (err) => {
        if (err) return callback(err);
        this.configure('busyTimeout', SQLITE_BUSY_TIMEOUT_MS);
        // WAL lets readers run beside the writer; NORMAL sync is durable across process crashes in WAL mode,
        // FULL also across power loss (see SqliteSynchronous).
        this.exec(pragmas, (e) => callback(e ?? null));
      });
    }
  }
  return { ...sqlite3, Database, default: undefined };
}

interface SqliteConnection {
  uuid?: string;
  close(cb?: (err: Error | null) => void): void;
}

interface SqliteConnectionManager {
  connections: Record<string, SqliteConnection>;
  getConnection(options?: { uuid?: string }): Promise<SqliteConnection>;
  releaseConnection(connection: SqliteConnection, force?: boolean): void;
}

/**
 * sequelize's SQLite driver opens a new database connection for every transaction and closes it at commit,
 * so each transaction pays an open, the PRAGMAs above and a schema read. Our transactions run one at a time
 * (`transaction()` queues them), so one connection kept between them is enough: measured 560 -> 800
 * transactions/s for a SELECT + INSERT transaction on the 2-core bench machine. Returns a function that
 * closes the kept connection (sequelize only closes the ones it tracks).
 */
function reuseTransactionConnections(sequelize: Sequelize): () => void {
  const cm = sequelize.connectionManager as unknown as SqliteConnectionManager;
  const idle: SqliteConnection[] = [];
  const get = cm.getConnection.bind(cm);
  const release = cm.releaseConnection.bind(cm);
  cm.getConnection = async (options = {}) => {
    const uuid = options.uuid;
    const kept = uuid && uuid !== 'default' && !cm.connections[uuid] ? idle.pop() : undefined;
    if (!kept) return get(options);
    cm.connections[uuid!] = kept;
    return kept;
  };
  cm.releaseConnection = (connection, force) => {
    // A transaction's connection (sequelize names it after the transaction) goes back on the shelf.
    if (
      force !== true &&
      connection.uuid &&
      connection.uuid !== 'default' &&
      cm.connections[connection.uuid] === connection &&
      idle.length === 0
    ) {
      delete cm.connections[connection.uuid];
      idle.push(connection);
      return;
    }
    release(connection, force);
  };
  return () => {
    for (const c of idle.splice(0)) c.close();
  };
}

/**
 * Open a database by URL: `sqlite:<file>` (`sqlite:` alone is in memory) or `postgres://...`. Nothing is
 * created or migrated here; `createRelay` applies the outbox migrations.
 * @throws Error when the URL has another scheme or `sqliteSynchronous` is not `normal` or `full`.
 */
export function openDatabase(url: string, options: OpenDatabaseOptions = {}): Database {
  const logging = options.logging ?? false;
  const synchronous = options.sqliteSynchronous ?? 'normal';
  if (!SQLITE_SYNCHRONOUS_LEVELS.includes(synchronous))
    throw new Error(`sqliteSynchronous must be normal or full (got ${JSON.stringify(synchronous)})`);
  if (url.startsWith('sqlite:')) {
    const storage = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '') || ':memory:';
    const sequelize = new Sequelize({
      dialect: 'sqlite',
      storage,
      logging,
      dialectModule: sqliteModule(synchronous),
      transactionType: Transaction.TYPES.IMMEDIATE,
    });
    const closeIdle = reuseTransactionConnections(sequelize);
    let tail: Promise<unknown> = Promise.resolve();
    return {
      sequelize,
      dialect: 'sqlite',
      postgresUrl: undefined,
      transaction<T>(fn: (t: Transaction) => Promise<T>): Promise<T> {
        const run = tail.then(
          () => sequelize.transaction(fn),
          () => sequelize.transaction(fn),
        );
        tail = run.catch(() => undefined);
        return run;
      },
      close: async () => {
        closeIdle();
        await sequelize.close();
      },
    };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const sequelize = new Sequelize(url, {
      dialect: 'postgres',
      logging,
      pool: options.pool ?? { max: 10, min: 0, idle: 10_000, acquire: 30_000 },
    });
    return {
      sequelize,
      dialect: 'postgres',
      postgresUrl: url,
      transaction: (fn) => sequelize.transaction(fn),
      close: () => sequelize.close(),
    };
  }
  throw new Error('DATABASE_URL must start with sqlite: or postgres://');
}

/** Postgres returns BIGINT as a string; both dialects' timestamps are stored as epoch milliseconds. */
export const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));

/**
 * Error codes that mean the database cannot be reached or is shutting down, not that the statement was
 * wrong: PostgreSQL's connection exceptions (08xxx), admin shutdown / crash / cannot-connect-now (57P01-03),
 * too many connections (53300), read-only standby during fail-over (25006); SQLite's busy and locked.
 */
const UNAVAILABLE_CODES = new Set([
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '25006',
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'ECONNREFUSED',
  'ECONNRESET',
]);
const UNAVAILABLE_MESSAGE =
  /Connection terminated|connection error and is not queryable|Connection is closed|not currently accepting connections/i;

/**
 * Whether `err` (or what it wraps) says the database is unavailable rather than the request being wrong:
 * sequelize's connection errors (refused, timed out, pool acquire timeout, ...), its TimeoutError
 * (SQLITE_BUSY), and the driver codes above. A host answers these with 503 and `Retry-After`, not 500.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 6 && e && typeof e === 'object'; depth++) {
    const x = e as { code?: unknown; message?: unknown; original?: unknown; parent?: unknown; cause?: unknown };
    if (e instanceof ConnectionError || e instanceof ConnectionAcquireTimeoutError || e instanceof TimeoutError) return true;
    if (typeof x.code === 'string' && (UNAVAILABLE_CODES.has(x.code) || /^08/.test(x.code))) return true;
    if (typeof x.message === 'string' && UNAVAILABLE_MESSAGE.test(x.message)) return true;
    e = x.original ?? x.parent ?? x.cause;
  }
  return false;
}
