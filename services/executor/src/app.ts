import type { ConfigOf } from '@runnerhub/config';
import type { ServiceRuntime, StartedService } from '@runnerhub/service-kit';
import { InventoryCredentials, InventoryHostKeys } from './adapters/inventory.js';
import { JobExecutor } from './adapters/job-consumer.js';
import { SshPool } from './adapters/ssh-pool.js';
import type { executorEnv } from './config.js';
import { HostBreakers } from './domain/breaker.js';
import { CommandRunner } from './domain/run-command.js';
import { connectivityHandlers } from './handlers/connectivity.js';

export type ExecutorConfig = ConfigOf<typeof executorEnv>;

/** Time kept back from SHUTDOWN_GRACE_MS to kill what still runs and publish its status before the process exits. */
const STOP_MARGIN_MS = 5_000;

export async function startExecutor(runtime: ServiceRuntime<ExecutorConfig>): Promise<StartedService> {
  const { config, bus, logger } = runtime;
  const hostKeys = new InventoryHostKeys(bus);
  const pool = new SshPool({
    verifyHostKey: hostKeys.verify,
    maxConnectionsPerServer: config.EXECUTOR_MAX_CONNECTIONS_PER_SERVER,
    idleTimeoutMs: config.EXECUTOR_SSH_IDLE_TIMEOUT_MS,
    connectTimeoutMs: config.EXECUTOR_SSH_CONNECT_TIMEOUT_MS,
  });
  const breakers = new HostBreakers();
  const executor = new JobExecutor(
    bus,
    new CommandRunner(pool, breakers),
    new InventoryCredentials(bus, config.EXECUTOR_CREDENTIAL_CACHE_MS),
    {
      executorId: config.EXECUTOR_ID,
      concurrency: config.EXECUTOR_CONCURRENCY,
      heartbeatMs: config.EXECUTOR_HEARTBEAT_MS,
      ackWaitMs: config.EXECUTOR_ACK_WAIT_MS,
      maxAckPending: config.EXECUTOR_MAX_ACK_PENDING,
      shutdownGraceMs: Math.max(0, config.SHUTDOWN_GRACE_MS - STOP_MARGIN_MS),
    },
    logger,
    (server) => hostKeys.lastSeen(server),
  );
  await executor.start();
  logger.info({ executorId: config.EXECUTOR_ID, concurrency: config.EXECUTOR_CONCURRENCY }, 'executor pulling dispatches');
  return {
    registrations: [
      connectivityHandlers({
        bus,
        logger,
        breakers,
        credentials: new InventoryCredentials(bus),
        verifyHostKey: hostKeys.verify,
        connectTimeoutMs: config.EXECUTOR_SSH_CONNECT_TIMEOUT_MS,
      }),
    ],
    async stop() {
      await executor.stop();
      breakers.shutdown();
      await pool.close();
    },
  };
}
