/**
 * One place that knows the two dialects. SQLite is the embedded default: WAL, a generous busy timeout and
 * in-process serialisation of write transactions (SQLite has one writer; queueing here is cheaper than
 * SQLITE_BUSY retries). PostgreSQL is for production and scale-out.
 */
import { createRequire } from 'node:module';
import { ConnectionAcquireTimeoutError, ConnectionError, Sequelize, TimeoutError, Transaction } from 'sequelize';
import type { Options } from 'sequelize';
import type sqlite3Types from 'sqlite3';
import { disablePgPreparedStatements } from './sql/driver.js';

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
/** Prepared statements kept per SQLite connection (`allPrepared`). */
const PREPARED_PER_CONNECTION = 64;

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
  /**
   * How often a SQLite file's WAL is checkpointed in the background, by a connection of its own that never
   * blocks a writer (1000 ms). 0 leaves checkpoints to SQLite, on the commit that crosses 1,000 WAL pages.
   * Ignored on PostgreSQL.
   */
  sqliteCheckpointIntervalMs?: number;
  /**
   * Run the hot INSERTs (the outbox's, the group commit's batches) as named prepared
   * statements, parsed and planned once per connection (true). Turn it off behind a pooler that cannot keep
   * named statements across transactions (PgBouncer before 1.21 in transaction mode). Ignored on SQLite,
   * which always keeps its statements prepared.
   */
  pgPreparedStatements?: boolean;
}

/** sqlite3, with every new connection configured the same way (sequelize opens one per transaction; see below). */
function sqliteModule(synchronous: SqliteSynchronous, backgroundCheckpoints: boolean) {
  const pragmas =
    `PRAGMA journal_mode=WAL; PRAGMA synchronous=${synchronous === 'full' ? 'FULL' : 'NORMAL'};` +
    (backgroundCheckpoints ? ' PRAGMA wal_autocheckpoint=0;' : '');
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

    /** This connection's prepared statements, by SQL text, oldest first (see `allPrepared`); null while preparing. */
    private readonly statements = new Map<string, sqlite3Types.Statement | null>();
    private preparing = 0;
    private readonly whenPrepared: Array<() => void> = [];

    /**
     * `all()` through a statement prepared once for this connection. `Database#all` prepares the text,
     * runs it and finalizes it: three trips through the thread pool and back to the main thread per
     * statement, where a kept statement takes one (a one-row json_each INSERT: 166-208 us of CPU and
     * 246-481 us of wall time per statement, against 89-102 and 130-198). The hot statements' texts are
     * fixed (`insertRows` binds its rows as one JSON parameter), so a few dozen cover them; past
     * `PREPARED_PER_CONNECTION` the oldest is finalized. A text runs through `all()` until its statement
     * is prepared, so an error in it is reported as `all()` reports it, and such a statement is never kept.
     */
    allPrepared(sql: string, params: unknown[], callback: (err: Error | null, rows: Record<string, unknown>[]) => void): void {
      const statement = this.statements.get(sql);
      if (statement) {
        statement.all(params, callback);
        return;
      }
      if (statement === undefined) this.keep(sql);
      this.all(sql, params, callback);
    }

    private keep(sql: string): void {
      if (this.statements.size >= PREPARED_PER_CONNECTION) {
        const [oldest, evicted] = this.statements.entries().next().value!;
        this.statements.delete(oldest);
        evicted?.finalize();
      }
      this.statements.set(sql, null);
      this.preparing += 1;
      const statement: sqlite3Types.Statement = this.prepare(sql, (err) => {
        this.preparing -= 1;
        const waiting = this.statements.get(sql) === null;
        if (err) {
          // Not preparable: never kept (`all()` reported the error to its caller).
          if (waiting) this.statements.delete(sql);
        } else if (waiting) this.statements.set(sql, statement);
        else statement.finalize(); // evicted meanwhile
        if (this.preparing === 0) for (const go of this.whenPrepared.splice(0)) go();
      });
    }

    /** Finalize the kept statements first: SQLite refuses to close a connection that has any. */
    override close(callback?: (err: Error | null) => void): void {
      // A statement still being prepared must be finalized too; its callback does that.
      if (this.preparing > 0) {
        this.whenPrepared.push(() => this.close(callback));
        return;
      }
      const kept = [...this.statements.values()].filter((x): x is sqlite3Types.Statement => x !== null);
      this.statements.clear();
      let left = kept.length;
      if (left === 0) return super.close(callback);
      for (const statement of kept)
        statement.finalize(() => {
          if (--left === 0) super.close(callback);
        });
    }
  }
  return { ...sqlite3, Database, default: undefined };
}

/**
 * Checkpoints of a SQLite file's WAL, off the write path. SQLite's own (automatic) checkpoint runs inside
 * the commit that takes the WAL past 1,000 pages: that commit copies the pages into the database file and
 * syncs it, and every write queued behind it waits. On the bench machine this held commits 20-30 ms (p99
 * 19.6 ms against 2.3 ms without it, 5-row transactions at ~400/s). Here the writer's connections never
 * checkpoint (`wal_autocheckpoint=0`); a connection of its own runs a PASSIVE checkpoint every interval,
 * on a thread-pool thread, which copies what no reader still needs and never blocks a writer. SQLite
 * starts the WAL over once everything in it was copied. Durability is unchanged: a commit is durable as
 * soon as it is in the WAL (see SqliteSynchronous); a checkpoint only moves it into the database file.
 */
/** The first row `sql` returns on `db`. */
function rowOf<R>(db: sqlite3Types.Database, sql: string): Promise<R | undefined> {
  return new Promise((resolve, reject) => db.get(sql, (err, row: R | undefined) => (err ? reject(err) : resolve(row))));
}

class WalCheckpointer {
  private connection: sqlite3Types.Database | null = null;
  private readonly timer: NodeJS.Timeout;
  /** The checkpoint in progress, if any. */
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly file: string,
    intervalMs: number,
  ) {
    this.timer = setInterval(() => {
      if (this.running || this.closed) return;
      this.running = this.tick().finally(() => (this.running = null));
    }, intervalMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      // Opened once the file exists (the first connection creates it); never creates it.
      this.connection ??= await this.open();
      if (this.connection) await this.checkpoint(this.connection);
    } catch {
      // Busy (another process's checkpoint) or not ready yet: the next tick tries again.
    }
  }

  /**
   * A connection to the file once it is a WAL database, else null (the next tick tries again). A connection
   * learns the journal mode from the file when it reads it: one that opened the file while it was still
   * empty or not yet in WAL mode would answer every checkpoint with "not in WAL mode" and never copy a page.
   */
  private async open(): Promise<sqlite3Types.Database | null> {
    const sqlite3 = require('sqlite3') as typeof sqlite3Types;
    const db = await new Promise<sqlite3Types.Database | null>((resolve) => {
      const opened: sqlite3Types.Database = new sqlite3.Database(this.file, sqlite3.OPEN_READWRITE, (err) => resolve(err ? null : opened));
    });
    if (!db) return null;
    // Read the file first: that is when the connection learns its journal mode.
    const mode = await rowOf(db, 'SELECT count(*) FROM sqlite_master')
      .then(() => rowOf<{ journal_mode?: unknown }>(db, 'PRAGMA journal_mode'))
      .then(
        (row) => row?.journal_mode,
        () => null,
      );
    if (mode === 'wal') return db;
    await new Promise<void>((r) => db.close(() => r()));
    return null;
  }

  /** One PASSIVE checkpoint; a connection that finds the file not in WAL mode is closed (reopened next tick). */
  private async checkpoint(db: sqlite3Types.Database): Promise<void> {
    const row = await rowOf<{ log?: unknown }>(db, 'PRAGMA wal_checkpoint(PASSIVE)');
    if (row?.log === -1 && this.connection === db) {
      this.connection = null;
      await new Promise<void>((r) => db.close(() => r()));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.running;
    const db = this.connection;
    this.connection = null;
    if (db) await new Promise<void>((r) => db.close(() => r()));
  }
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
  const checkpointMs = options.sqliteCheckpointIntervalMs ?? 1000;
  if (typeof checkpointMs !== 'number' || !Number.isFinite(checkpointMs) || checkpointMs < 0)
    throw new Error(`sqliteCheckpointIntervalMs must be a number of milliseconds >= 0 (got ${JSON.stringify(checkpointMs)})`);
  if (url.startsWith('sqlite:')) {
    const storage = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '') || ':memory:';
    const inMemory = storage === ':memory:' || storage.startsWith('file::memory:');
    const checkpointer = checkpointMs > 0 && !inMemory ? new WalCheckpointer(storage, checkpointMs) : null;
    const sequelize = new Sequelize({
      dialect: 'sqlite',
      storage,
      logging,
      dialectModule: sqliteModule(synchronous, checkpointer !== null),
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
        await checkpointer?.close();
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
    if (options.pgPreparedStatements === false) disablePgPreparedStatements(sequelize);
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
