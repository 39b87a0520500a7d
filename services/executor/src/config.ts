import { hostname } from 'node:os';
import { env } from '@runnerhub/config';
import { commonEnv } from '@runnerhub/service-kit';

export const executorEnv = {
  ...commonEnv({ metricsPort: 9414 }),
  EXECUTOR_ID: env.string('Name of this executor in heartbeats and job statuses (default: hostname-pid)', `${hostname()}-${process.pid}`),
  EXECUTOR_CONCURRENCY: env.int('Jobs this executor runs at once (it pulls no more dispatches than that)', 50, 1),
  EXECUTOR_HEARTBEAT_MS: env.int('Interval of executor.v1.heartbeat.<id>; the scheduler declares an executor lost after 30 s without one', 5_000, 100),
  EXECUTOR_ACK_WAIT_MS: env.int('Ack wait of the durable JOBS consumer: a dispatch of a lost executor is redelivered after this long (running jobs are kept alive with progress acks)', 30_000, 500),
  EXECUTOR_MAX_ACK_PENDING: env.int('Dispatches in flight across all executors sharing the consumer (each executor also pulls at most EXECUTOR_CONCURRENCY)', 1_000, 1),
  EXECUTOR_CREDENTIAL_CACHE_MS: env.int('How long a login resolved from inventory is reused for further jobs on the same server (0 = ask inventory for every job)', 10_000, 0),
  EXECUTOR_MAX_CONNECTIONS_PER_SERVER: env.int('SSH connections per server and credential (each carries up to the server\'s MaxSessions channels)', 2, 1),
  EXECUTOR_SSH_IDLE_TIMEOUT_MS: env.int('An unused pooled SSH connection is closed after this long', 60_000, 0),
  EXECUTOR_SSH_CONNECT_TIMEOUT_MS: env.int('Timeout of the TCP connection to a server', 5_000, 1),
};
