import type { ConfigOf } from '@runnerhub/config';
import { SecretBox } from '@runnerhub/secrets';
import type { ServiceRuntime, StartedService } from '@runnerhub/service-kit';
import { createDatabase } from './adapters/database.js';
import { identityAccess } from './adapters/organizations.js';
import type { inventoryEnv } from './config.js';
import { Credentials } from './domain/credentials.js';
import { ServerGroups } from './domain/server-groups.js';
import { Servers } from './domain/servers.js';
import { serverGroupsHandlers } from './handlers/server-groups.js';
import { serversHandlers } from './handlers/servers.js';

export type InventoryConfig = ConfigOf<typeof inventoryEnv>;

export async function startInventory(runtime: ServiceRuntime<InventoryConfig>): Promise<StartedService> {
  const { config, logger } = runtime;
  const { db, pool } = createDatabase({
    url: config.DATABASE_URL,
    poolSize: config.DATABASE_POOL_SIZE,
    timeoutMs: config.DATABASE_TIMEOUT_MS,
    onError: (error) => logger.warn({ err: error }, 'database connection lost'),
  });
  const credentials = new Credentials(new SecretBox(config.SECRETS_KEY_ID, { [config.SECRETS_KEY_ID]: config.SECRETS_KEY }));
  const access = identityAccess(runtime.bus);

  return {
    registrations: [serversHandlers(new Servers(db, credentials), access), serverGroupsHandlers(new ServerGroups(db), access)],
    dependencies: [{ name: 'database', check: async () => void (await pool.query('SELECT 1')) }],
    async stop() {
      await db.$disconnect();
      await pool.end();
    },
  };
}
