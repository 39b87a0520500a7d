import pg from 'pg';
import { env } from '@runnerhub/config';

/** The variables every data-owning service reads for its own database. */
export function databaseEnv(databaseName: string) {
  return {
    DATABASE_URL: env.string(`PostgreSQL URL of the ${databaseName} database`, `postgresql://runnerhub:runnerhub@127.0.0.1:15432/${databaseName}`),
    DATABASE_POOL_SIZE: env.int('Connections in the database pool', 10, 1),
    DATABASE_TIMEOUT_MS: env.int('Timeout of a database statement and of acquiring a connection', 5_000, 1),
  };
}

export interface PoolOptions {
  url: string;
  poolSize: number;
  timeoutMs: number;
  onError?: (error: Error) => void;
}

/** A bounded pg pool where every connect and statement has a timeout; Prisma's adapter runs on it. */
export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: options.timeoutMs,
    statement_timeout: options.timeoutMs,
    query_timeout: options.timeoutMs + 1_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle connection that PostgreSQL drops (restart, failover) emits an error
  // on the pool; unhandled, it would crash the service. The pool reconnects on its own.
  pool.on('error', (error) => options.onError?.(error));
  return pool;
}

/** The health-check dependency of a service on its database. */
export function databaseDependency(pool: pg.Pool): { name: string; check(): Promise<void> } {
  return { name: 'database', check: async () => void (await pool.query('SELECT 1')) };
}

/** Pool options from a service's parsed database variables; lost connections are logged, not fatal. */
export function poolOptions(
  config: { DATABASE_URL: string; DATABASE_POOL_SIZE: number; DATABASE_TIMEOUT_MS: number },
  logger: { warn(obj: object, msg?: string): void },
): PoolOptions {
  return {
    url: config.DATABASE_URL,
    poolSize: config.DATABASE_POOL_SIZE,
    timeoutMs: config.DATABASE_TIMEOUT_MS,
    onError: (error) => logger.warn({ err: error }, 'database connection lost'),
  };
}
export { columnOf, fieldOf, recordsetJson } from './recordset.js';
