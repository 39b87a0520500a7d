import { randomUUID } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory, type SqlDriverAdapter } from '@prisma/driver-adapter-utils';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';

const PG_CHAR_OID = 18;
const PG_TEXT_OID = 25;
const CLIENT_TIMEOUT_GRACE_MS = 5_000;

interface FieldDescription {
  dataTypeID: number;
}

export type MigrationAdapterFactory = ReturnType<typeof bindMigrationAwareSqlAdapterFactory>;

/** The engine's way into one database and its throw-away shadow databases. */
export interface MigrationDatabase {
  readonly factory: MigrationAdapterFactory;
  /**
   * The engine reports errors thrown on the JS side (timeouts, failed shadow
   * database creation) as "External error id#N"; put the real message in.
   */
  explain(error: unknown): unknown;
  /** Ends every pool and drops any shadow database the engine left behind; never throws. */
  close(): Promise<void>;
}

export function openMigrationDatabase(url: string, timeoutMs: number, log: (line: string) => void): MigrationDatabase {
  const config: pg.PoolConfig = {
    // Adapter workaround 2: a connection string would override the shadow
    // database's name and make the shadow the main database. Pass the parts.
    ...parseIntoClientConfig(url),
    // The engine takes a session-level advisory lock: keep it on one session.
    max: 1,
    connectionTimeoutMillis: timeoutMs,
    // The server cancels slow statements; the later client-side limit only
    // catches a connection that went silent.
    statement_timeout: timeoutMs,
    query_timeout: timeoutMs + CLIENT_TIMEOUT_GRACE_MS,
  };
  const main = createPool(config);
  const shadowPools = new Set<pg.Pool>();
  const shadowDatabases = new Set<string>();

  const dropShadow = async (database: string) => {
    await main.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    shadowDatabases.delete(database);
  };

  const factory = bindMigrationAwareSqlAdapterFactory({
    provider: 'postgres',
    adapterName: '@prisma/adapter-pg',
    connect: () => connectAdapter(main),
    async connectToShadowDb(): Promise<SqlDriverAdapter> {
      const database = `rh_shadow_${randomUUID().replaceAll('-', '')}`;
      await main.query(`CREATE DATABASE "${database}"`);
      shadowDatabases.add(database);
      const pool = createPool({ ...config, database });
      shadowPools.add(pool);
      const adapter = await connectAdapter(pool);
      // Adapter workaround 3: it drops the shadow database while its own pool
      // still holds a connection ("being accessed by other users"). Close first, then drop.
      adapter.dispose = async () => {
        shadowPools.delete(pool);
        await pool.end();
        await dropShadow(database);
      };
      return adapter;
    },
  });

  return {
    factory,
    explain(error) {
      const match = error instanceof Error ? /External error id#(\d+)/.exec(error.message) : null;
      const record = match ? factory.errorRegistry.consumeError(Number(match[1])) : undefined;
      if (!match || !record) return error;
      const cause = record.error instanceof Error ? record.error.message : String(record.error);
      (error as Error).message = (error as Error).message.replace(match[0], cause);
      return error;
    },
    async close() {
      const report = (error: unknown) => log(`cleanup failed: ${error instanceof Error ? error.message : String(error)}`);
      await Promise.all([...shadowPools].map((pool) => pool.end().catch(report)));
      for (const database of shadowDatabases) await dropShadow(database).catch(report);
      await main.end().catch(report);
    },
  };
}

async function connectAdapter(pool: pg.Pool): Promise<SqlDriverAdapter> {
  const adapter = await new PrismaPg(pool).connect();
  // Adapter workaround 4: executeScript splits scripts at every ";", which breaks
  // dollar-quoted function bodies and string literals. Send the script whole:
  // without parameters pg uses the simple query protocol, which runs it as one
  // implicit transaction, as Prisma's native engine does.
  adapter.executeScript = async (script) => {
    await adapter.executeRaw({ sql: script, args: [], argTypes: [] });
  };
  return adapter;
}

function createPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool(config);
  pool.on('error', () => {
    // An idle client lost its connection; the next query reports the failure.
  });
  // Adapter workaround 1: the adapter cannot map PostgreSQL's internal "char"
  // type (OID 18) that pg_catalog columns use. Describe those columns as text
  // before pg picks a parser for them.
  pool.on('connect', (client) => {
    client.connection.prependListener('rowDescription', (message: { fields: FieldDescription[] }) => {
      for (const field of message.fields) {
        if (field.dataTypeID === PG_CHAR_OID) field.dataTypeID = PG_TEXT_OID;
      }
    });
  });
  return pool;
}
