import { env } from '@runnerhub/config';
import { databaseEnv } from '@runnerhub/database';
import { commonEnv } from '@runnerhub/service-kit';

export const schedulerEnv = {
  ...commonEnv({ metricsPort: 9413 }),
  ...databaseEnv('scheduler'),
  SCHEDULER_MAX_CONCURRENT: env.int('Tasks running at once across every server (max_concurrent_executions)', 100, 1),
  SCHEDULER_PER_SERVER_CONCURRENCY: env.int('Tasks running at once on one server when its record sets no limit', 10, 1),
  SCHEDULER_DISPATCH_INTERVAL_MS: env.int('How often the dispatcher looks for queued tasks when nothing woke it', 250, 10),
  SCHEDULER_DISPATCH_BATCH: env.int('Most tasks released to JOBS in one dispatcher pass', 500, 1),
  SCHEDULER_SERVER_CACHE_MS: env.int("How long a server's record from inventory is reused for new tasks (a change in inventory drops it at once); 0 = ask every time", 5_000, 0),
  SCHEDULER_RUNNING_DELAY_MS: env.int('How long an executor\'s RUNNING report waits before it is recorded; a task that ends meanwhile is written once, with its final status. 0 = at once', 200, 0),
  SCHEDULER_EXECUTOR_LOST_MS: env.int('A running task whose executor sent no heartbeat for this long fails with executor_lost (or is re-queued when safe_to_retry)', 30_000, 100),
};
