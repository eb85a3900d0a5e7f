/**
 * Run one hot-path statement on the driver (node-sqlite3 or pg) through sequelize's own connection, without
 * `sequelize.query`.
 *
 * Why: `sequelize.query` re-parses every statement for bind parameters (and for replacements), builds an
 * `Error` per query for its stack, runs hooks and a retry wrapper, and picks a result shape by sniffing the
 * SQL. On a forwarding devices host that is 5-8% of busy CPU (docs/performance.md). The few statements that
 * run per request or per delivery (the outbox INSERTs, the claim, the result write) come here instead; the
 * rest of the code keeps sequelize.
 *
 * What is kept of `sequelize.query` (sequelize 6, `lib/sequelize.js` and `lib/dialects/{sqlite,postgres}/
 * query.js`), so callers see no difference:
 * - the connection: the transaction's own, or one acquired from and released to sequelize's connection
 *   manager (on SQLite its shared default connection, as sequelize uses);
 * - refusing a transaction that has finished (the statement would otherwise run outside it);
 * - errors: the driver's error mapped by the dialect's own `formatError`, so callers still get
 *   `UniqueConstraintError`, `ForeignKeyConstraintError`, `TimeoutError` (SQLITE_BUSY), `DatabaseError`, all
 *   `BaseError`s that `isDatabaseUnavailable` and the group commit recognise; a pg connection that failed
 *   mid-query is marked invalid so the pool drops it;
 * - the retry of `options.retry` (by default: SQLITE_BUSY, five tries, 100 ms backoff growing by 1.1x);
 * - on PostgreSQL, NUL characters in string values become `\0` (PostgreSQL refuses NUL in text).
 * Dropped: logging and benchmark hooks, CLS transactions, search-path prefixes (the relay uses none).
 *
 * Placeholders are written `$1`, `$2`, ... for both dialects. On SQLite they become `?1`, `?2`, ... and the
 * values are bound by position: sequelize binds them by name, and node-sqlite3 looks every name up with a
 * linear search.
 *
 * Prepared statements. SQLite keeps every statement prepared per connection (`allPrepared` in db.ts). On
 * PostgreSQL a statement run with `{ prepare: true }` is a named prepared statement: parsed, analysed and
 * (once PostgreSQL settles on a generic plan) planned once per connection instead of on every run. A
 * perf profile of the backends of a forwarding devices host at 400 records/s put 42% of their CPU in
 * parse, analysis and planning. Only INSERTs with a fixed text (rows travel as one JSON parameter:
 * `pgInsert`, the outbox, a group-commit batch of INSERTs) ask for it. A statement that finds rows by a
 * WHERE (the claim, the result write) does not: PostgreSQL keeps the generic plan it makes after five runs,
 * and one made while a table was small scans it in full until the next ANALYZE. A process names at most
 * `PG_PREPARED_MAX` texts and runs any further ones unnamed.
 * `openDatabase(url, { pgPreparedStatements: false })` turns it off (for a pooler that cannot keep named
 * statements, such as PgBouncer before 1.21 in transaction mode).
 */
import type { Sequelize, Transaction } from 'sequelize';

type Row = Record<string, unknown>;

interface SqliteDatabase {
  all(sql: string, params: unknown[], callback: (err: Error | null, rows: Row[]) => void): unknown;
  /** The same through a statement kept prepared for the connection (connections that `openDatabase` opened). */
  allPrepared?(sql: string, params: unknown[], callback: (err: Error | null, rows: Row[]) => void): void;
}

interface PgClient {
  query(sql: string | { name: string; text: string; values: unknown[] }, values?: unknown[]): Promise<{ rows: Row[] }>;
  _invalid?: boolean;
}

/** Options of one {@link runSql} call. */
export interface RunSqlOptions {
  /** PostgreSQL: run it as a named prepared statement (its text must not vary with the data). */
  prepare?: boolean;
  /**
   * PostgreSQL: planner settings for this statement (`SET LOCAL`). Without `transaction` they hold for it
   * alone (a transaction of its own around it, the settings sent with its `BEGIN` in one round trip); in a
   * caller's transaction, until that transaction ends. Names and values are written into the SQL: pass
   * constants only.
   */
  planner?: Record<string, string>;
}

/** Distinct statement texts a process prepares by name on PostgreSQL; further texts run unnamed. */
export const PG_PREPARED_MAX = 128;
/** The name of each prepared text, the same on every connection of the process. */
const pgNames = new Map<string, string>();
/** sequelize instances whose statements are never prepared by name (`openDatabase`'s `pgPreparedStatements`). */
const unprepared = new WeakSet<Sequelize>();

/** Run this instance's `{ prepare: true }` statements unnamed (`openDatabase(url, { pgPreparedStatements: false })`). */
export function disablePgPreparedStatements(sequelize: Sequelize): void {
  unprepared.add(sequelize);
}

/** The name `text` is prepared under, or undefined when the process has named as many texts as it may. */
function pgStatementName(text: string): string | undefined {
  let name = pgNames.get(text);
  if (name === undefined && pgNames.size < PG_PREPARED_MAX) {
    name = `raqeem_relay_${pgNames.size + 1}`;
    pgNames.set(text, name);
  }
  return name;
}

/** The parts of sequelize's runtime that its typings do not show. */
interface SequelizeInternals {
  options: { retry?: { max?: number; match?: unknown[]; backoffBase?: number; backoffExponent?: number } };
  dialect: {
    Query: new (connection: unknown, sequelize: Sequelize, options: object) => { formatError(err: Error, stack?: string): Error };
  };
  connectionManager: {
    getConnection(options: object): Promise<unknown>;
    releaseConnection(connection: unknown): void;
  };
}

/** The pg errors after which sequelize stops using the connection (`postgres/query.js`). */
const PG_BROKEN = /Unable to set non-blocking to true|SSL SYSCALL error: EOF detected|Local: Authentication failure/i;

const SQLITE_PLACEHOLDER = /\$(\d+)/g;

const stringifyBigint = (v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : v);
/** PostgreSQL refuses NUL in text: a string's NUL characters become `\\0`, as sequelize binds them. */
export const escapeNul = (v: unknown): unknown => (typeof v === 'string' && v.includes('\0') ? v.replace(/\0/g, '\\0') : v);

/**
 * Run `sql` with `bind` as `$1..$n` in `transaction` (or autocommitted on a connection of sequelize's) and
 * return the rows it produces (none for a statement without RETURNING).
 */
export async function runSql<R extends object = Row>(
  sequelize: Sequelize,
  sql: string,
  bind: readonly unknown[],
  transaction: Transaction | undefined,
  options: RunSqlOptions = {},
): Promise<R[]> {
  const s = sequelize as unknown as SequelizeInternals;
  const sqlite = sequelize.getDialect() === 'sqlite';
  const text = sqlite ? sql.replace(SQLITE_PLACEHOLDER, '?$1') : sql;
  const values = sqlite ? bind.map(stringifyBigint) : bind.map(escapeNul);
  const name = !sqlite && options.prepare && !unprepared.has(sequelize) ? pgStatementName(text) : undefined;
  const retry = s.options.retry ?? {};
  for (let attempt = 1; ; attempt++) {
    try {
      return (await runOnce(s, sequelize, sqlite, text, values, transaction, name, options.planner)) as R[];
    } catch (err) {
      if (attempt >= (retry.max ?? 0) || !matchesRetry(retry.match ?? [], err)) throw err;
      const delay = (retry.backoffBase ?? 100) * (retry.backoffExponent ?? 1.1) ** (attempt - 1);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

async function runOnce(
  s: SequelizeInternals,
  sequelize: Sequelize,
  sqlite: boolean,
  sql: string,
  values: unknown[],
  transaction: Transaction | undefined,
  name: string | undefined,
  planner?: Record<string, string>,
): Promise<Row[]> {
  const finished = (transaction as { finished?: string } | undefined)?.finished;
  if (finished) throw Object.assign(new Error(`${finished} has been called on this transaction, you can no longer use it`), { sql });
  const own = transaction === undefined;
  const connection = own
    ? await s.connectionManager.getConnection({ type: 'write' })
    : (transaction as unknown as { connection: unknown }).connection;
  try {
    if (sqlite) {
      const db = connection as SqliteDatabase;
      return await new Promise<Row[]>((resolve, reject) => {
        const done = (err: Error | null, rows: Row[]) => (err ? reject(err) : resolve(rows));
        if (db.allPrepared) db.allPrepared(sql, values, done);
        else db.all(sql, values, done);
      });
    }
    const client = connection as PgClient;
    if (!planner) return (await (name ? client.query({ name, text: sql, values }) : client.query(sql, values))).rows;
    const settings = Object.entries(planner).map(([k, v]) => `SET LOCAL ${k} = ${v}`);
    if (!own) {
      await client.query(settings.join('; '));
      return (await client.query(sql, values)).rows;
    }
    await client.query(['BEGIN', ...settings].join('; '));
    try {
      const rows = (await client.query(sql, values)).rows;
      await client.query('COMMIT');
      return rows;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } catch (err) {
    throw driverError(s, sequelize, connection, sqlite, sql, values, err);
  } finally {
    if (own) s.connectionManager.releaseConnection(connection);
  }
}

/** Bind values, and the function that adds one and returns its placeholder (`$1`, `$2`, ...). */
export function binder(bind: unknown[] = []): [unknown[], (value: unknown) => string] {
  return [
    bind,
    (value) => {
      bind.push(value);
      return `$${bind.length}`;
    },
  ];
}

/** The driver's error as sequelize would have thrown it. */
function driverError(
  s: SequelizeInternals,
  sequelize: Sequelize,
  connection: unknown,
  sqlite: boolean,
  sql: string,
  values: unknown[],
  err: unknown,
): Error {
  if (!(err instanceof Error)) return new Error(String(err));
  const e = err as Error & { code?: string; sql?: string; parameters?: unknown };
  if (!sqlite) {
    if (e.code === 'ECONNRESET' || PG_BROKEN.test(e.message) || e.message === 'Query read timeout')
      (connection as PgClient)._invalid = true;
    e.parameters = values;
  }
  e.sql = sql;
  const query = new s.dialect.Query(connection, sequelize, { logging: false });
  return query.formatError(e, new Error(e.message).stack);
}

/** sequelize's retry test (retry-as-promised): a string equal to the error's message or text, or a RegExp. */
function matchesRetry(match: unknown[], err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return match.some((m) =>
    typeof m === 'string' ? m === err.message || m === String(err) : m instanceof RegExp && (m.test(err.message) || m.test(String(err))),
  );
}
