import type { ConfigOf } from '@runnerhub/config';
import { ensureStreams } from '@runnerhub/bus';
import { databaseDependency, poolOptions } from '@runnerhub/database';
import { identityAccess, type ServiceRuntime, type StartedService } from '@runnerhub/service-kit';
import { createDatabase } from './adapters/database.js';
import { Dispatcher } from './adapters/dispatcher.js';
import { Followers } from './adapters/followers.js';
import { inventoryServers } from './adapters/inventory.js';
import type { schedulerEnv } from './config.js';
import { Lifecycle } from './domain/lifecycle.js';
import { Tasks } from './domain/tasks.js';
import { taskHandlers } from './handlers/tasks.js';

export type SchedulerConfig = ConfigOf<typeof schedulerEnv>;

export async function startScheduler(runtime: ServiceRuntime<SchedulerConfig>): Promise<StartedService> {
  const { config, logger, bus } = runtime;
  // Both ends of the JOBS stream make sure it exists, whichever starts first.
  await ensureStreams(bus);
  const { db, pool } = createDatabase(poolOptions(config, logger));
  const lifecycle = new Lifecycle(pool);
  const dispatcher = new Dispatcher(pool, bus, logger, {
    maxConcurrent: config.SCHEDULER_MAX_CONCURRENT,
    perServerConcurrency: config.SCHEDULER_PER_SERVER_CONCURRENCY,
    intervalMs: config.SCHEDULER_DISPATCH_INTERVAL_MS,
    batch: config.SCHEDULER_DISPATCH_BATCH,
    endedUnwritten: () => followers.endedUnwritten(),
  });
  const followers = new Followers(bus, lifecycle, logger, { executorLostMs: config.SCHEDULER_EXECUTOR_LOST_MS, runningDelayMs: config.SCHEDULER_RUNNING_DELAY_MS }, () => dispatcher.poke());
  followers.start();
  dispatcher.start();

  return {
    registrations: [
      taskHandlers({
        bus,
        logger,
        tasks: new Tasks(db, pool),
        lifecycle,
        access: identityAccess(bus, { cacheMs: config.ACCESS_CACHE_MS }),
        servers: inventoryServers(bus, config.SCHEDULER_SERVER_CACHE_MS),
        accepted: (serverUid) => dispatcher.accepted(serverUid),
        activeExecutors: () => followers.activeExecutors(),
        totalCapacity: config.SCHEDULER_MAX_CONCURRENT,
      }),
    ],
    dependencies: [databaseDependency(pool)],
    async stop() {
      await dispatcher.stop();
      await followers.stop();
      await db.$disconnect();
      await pool.end();
    },
  };
}
