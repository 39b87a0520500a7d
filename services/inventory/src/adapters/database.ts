import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.js';

export type InventoryDb = PrismaClient;

/** A Prisma client over a bounded pg pool; every statement and connect has a timeout. */
export function createDatabase(options: { url: string; poolSize: number; timeoutMs: number; onError?: (error: Error) => void }): { db: InventoryDb; pool: pg.Pool } {
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
  return { db: new PrismaClient({ adapter: new PrismaPg(pool) }), pool };
}
