import type { FastifyInstance } from 'fastify';
import { createClient, type Bus } from '@runnerhub/bus';
import { inventoryV1, schedulerV1 } from '@runnerhub/contracts';
import { callerOf } from './shared.js';

function envelope(data: unknown) {
  return { success: true, data, error: null, timestamp: new Date().toISOString() };
}

/** NewRemora's system figures, from the scheduler's tasks and inventory's servers of the caller's organisation. */
export async function systemRoutes(app: FastifyInstance, options: { bus: Bus }): Promise<void> {
  const tasks = createClient(options.bus, schedulerV1.Tasks);
  const servers = createClient(options.bus, inventoryV1.Servers);
  const config = { dialect: 'newremora' } as const;

  app.get('/api/v1/system/info', { config, onRequest: app.authenticate }, async (request) => {
    const caller = callerOf(request);
    const [stats, { pageInfo }] = await Promise.all([tasks.stats({ caller }), servers.list({ caller, page: { page: 1, limit: 1 } })]);
    const completed = Number(stats.completed);
    const failed = Number(stats.failed);
    const timestamp = new Date().toISOString();
    return {
      ...envelope({
        total_servers: pageInfo?.total ?? 0,
        total_jobs: Number(stats.total),
        running_jobs: Number(stats.running),
        completed_jobs: completed,
        failed_jobs: failed,
        queued_jobs: Number(stats.queued),
        canceled_jobs: Number(stats.canceled),
        // Of the jobs that ended by themselves (cancels left out), in percent with one decimal.
        success_rate: completed + failed === 0 ? 0 : Math.round((completed / (completed + failed)) * 1000) / 10,
        timestamp,
      }),
      timestamp,
    };
  });

  app.get('/api/v1/system/enhanced', { config, onRequest: app.authenticate }, async (request) => {
    const caller = callerOf(request);
    const all: inventoryV1.Server[] = [];
    for (let page = 1; ; page++) {
      const { servers: found, pageInfo } = await servers.list({ caller, page: { page, limit: 100 } });
      all.push(...found);
      if (page >= (pageInfo?.pages ?? 0)) break;
    }
    const stats = await tasks.stats({ caller });
    // Connected: the last health check reached the server.
    const connected = all.filter((s) => s.healthStatus === 'healthy').length;
    return envelope({
      connected_servers: connected,
      disconnected_servers: all.length - connected,
      average_job_duration: stats.averageDurationSeconds,
      jobs_per_hour: Number(stats.lastHour),
      worker_status: { active_workers: stats.activeExecutors, total_capacity: stats.totalCapacity },
    });
  });
}
