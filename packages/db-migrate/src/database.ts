import { randomUUID } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory, type SqlDriverAdapter } from '@prisma/driver-adapter-utils';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';

const PG_CHAR_OID = 18;
const PG_TEXT_OID = 25;

interface FieldDescription {
  dataTypeID: number;
}

export type MigrationAdapterFactory = ReturnType<typeof bindMigrationAwareSqlAdapterFactory>;

/** The engine's way into one database and its throw-away shadow databases. */
export interface MigrationDatabase {
  readonly factory: MigrationAdapterFactory;
  /** Ends every pool and drops any shadow database the engine left behind; never throws. */
  close(): Promise<void>;
}

export function openMigrationDatabase(url: string, timeoutMs: number, log: (line: string) => void): MigrationDatabase {
  // Adapter workaround 2: given a connection string, pg lets it override the
  // shadow database name, so the shadow would be the main database. Use discrete fields.
  const config: pg.PoolConfig = {
    ...parseIntoClientConfig(url),
    max: 1,
    connectionTimeoutMillis: timeoutMs,
    statement_timeout: timeoutMs,
    query_timeout: timeoutMs,
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
