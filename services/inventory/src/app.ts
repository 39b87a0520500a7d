import type { ConfigOf } from '@runnerhub/config';
import { databaseDependency, poolOptions } from '@runnerhub/database';
import { SecretBox } from '@runnerhub/secrets';
import { identityAccess, type ServiceRuntime, type StartedService } from '@runnerhub/service-kit';
import { createDatabase } from './adapters/database.js';
import { serverChangedPublisher } from './adapters/events.js';
import type { inventoryEnv } from './config.js';
import { Credentials } from './domain/credentials.js';
import { ServerGroups } from './domain/server-groups.js';
import { Servers } from './domain/servers.js';
import { serverGroupsHandlers } from './handlers/server-groups.js';
import { serversHandlers } from './handlers/servers.js';

export type InventoryConfig = ConfigOf<typeof inventoryEnv>;

export async function startInventory(runtime: ServiceRuntime<InventoryConfig>): Promise<StartedService> {
  const { config, logger } = runtime;
  const { db, pool } = createDatabase(poolOptions(config, logger));
  const credentials = new Credentials(SecretBox.fromConfig(config));
  const access = identityAccess(runtime.bus, { cacheMs: config.ACCESS_CACHE_MS });
  const servers = new Servers(db, credentials, serverChangedPublisher(runtime.bus));

  return {
    registrations: [serversHandlers(servers, access), serverGroupsHandlers(new ServerGroups(db), access)],
    dependencies: [databaseDependency(pool)],
    async stop() {
      await db.$disconnect();
      await pool.end();
    },
  };
}
