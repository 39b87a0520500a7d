import type { FastifyInstance } from 'fastify';
import type { Bus } from '@runnerhub/bus';
import type { Redis } from 'ioredis';
import type { ServiceDirectory, ServiceHealth } from './directory.js';

type State = 'healthy' | 'unhealthy' | 'not_configured';

/** The worst state any service reports for a dependency of that name. */
function dependencyState(services: ServiceHealth[], dependency: string): State {
  const states = services.map((s) => s.dependencies[dependency]).filter((s): s is string => s !== undefined);
  if (states.length === 0) return 'not_configured';
  return states.every((s) => s === 'healthy') ? 'healthy' : 'unhealthy';
}

/**
 * GET /health: the union of RunnerHub's fields (status, version, uptime,
 * services) and NewRemora's (database, queue), composed from every
 * discovered service's own health check and the gateway's dependencies.
 */
export async function healthRoutes(app: FastifyInstance, options: { bus: Bus; redis: Redis; directory: ServiceDirectory; version: string; redisTimeoutMs: number }): Promise<void> {
  const { bus, redis, directory } = options;
  const startedAt = Date.now();

  const pingRedis = async (): Promise<State> => {
    try {
      await Promise.race([redis.ping(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), options.redisTimeoutMs).unref())]);
      return 'healthy';
    } catch {
      return 'unhealthy';
    }
  };

  const compose = async () => {
    const [services, redisState] = await Promise.all([directory.checkAll(), pingRedis()]);
    const nats: State = bus.isConnected ? 'healthy' : 'unhealthy';
    const database = dependencyState(services, 'database');
    const unhealthyServices = services.filter((s) => s.status !== 'healthy');
    const status = nats === 'unhealthy' || database === 'unhealthy' ? 'unhealthy' : unhealthyServices.length > 0 || redisState !== 'healthy' ? 'degraded' : 'healthy';
    return { services, redisState, nats, database, status, uptimeSeconds: Math.round((Date.now() - startedAt) / 1000) };
  };

  app.get('/health', { config: { dialect: 'runnerhub' } }, async (_request, reply) => {
    const { services, redisState, nats, database, status, uptimeSeconds } = await compose();
    reply.status(status === 'unhealthy' ? 503 : 200);
    return {
      status,
      timestamp: new Date().toISOString(),
      version: options.version,
      uptime: uptimeSeconds,
      services: {
        database,
        redis: redisState,
        github: dependencyState(services, 'github'),
        vault: dependencyState(services, 'vault'),
        nats,
        gateway: 'healthy',
        ...Object.fromEntries(services.map((s) => [s.name, s.status])),
      },
      database: database === 'healthy' ? 'connected' : 'disconnected',
      queue: nats === 'healthy' ? 'connected' : 'disconnected',
      details: services,
    };
  });

  // RustCI's health: the same verdict, its uptime written out as "2h 30m 15s".
  app.get('/v1/health', { config: { dialect: 'rustci' } }, async (_request, reply) => {
    const { status, uptimeSeconds } = await compose();
    reply.status(status === 'unhealthy' ? 503 : 200);
    return { status, timestamp: new Date().toISOString(), version: options.version, uptime: humanUptime(uptimeSeconds) };
  });
}

export function humanUptime(seconds: number): string {
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  return `${hours}h ${minutes}m ${seconds % 60}s`;
}
