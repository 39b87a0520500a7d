import { PrismaPg } from '@prisma/adapter-pg';
import { createPool, type PoolOptions } from '@runnerhub/database';
import type pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.js';

export type SchedulerDb = PrismaClient;

export function createDatabase(options: PoolOptions): { db: SchedulerDb; pool: pg.Pool } {
  const pool = createPool(options);
  return { db: new PrismaClient({ adapter: new PrismaPg(pool) }), pool };
}
