import { Redis } from 'ioredis';
import type { ConfigOf } from '@runnerhub/config';
import type { ServiceRuntime, StartedService } from '@runnerhub/service-kit';
import type { gatewayEnv } from './config.js';
import { ServiceDirectory } from './health/directory.js';
import { RevokedSessions } from './plugins/revocations.js';
import { buildGateway } from './server.js';

export type GatewayConfig = ConfigOf<typeof gatewayEnv>;

export async function startGateway(runtime: ServiceRuntime<GatewayConfig>): Promise<StartedService> {
  const { config, bus, logger } = runtime;
  const redis = new Redis(config.REDIS_URL, {
    connectTimeout: config.REDIS_TIMEOUT_MS,
    commandTimeout: config.REDIS_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
    // Every API request checks its rate limit: the checks issued in one turn of the event loop go in one write.
    enableAutoPipelining: true,
  });
  redis.on('error', (error: Error) => logger.warn({ err: error }, 'redis error'));
  await redis.connect().catch((error: Error) => logger.warn({ err: error }, 'redis is not reachable yet'));

  const directory = new ServiceDirectory(bus, runtime.name, config.HEALTH_CHECK_TIMEOUT_MS);
  directory.start(config.DISCOVERY_INTERVAL_MS);
  const revoked = new RevokedSessions(bus, config.TOKEN_TTL_SECONDS * 1000);
  await revoked.start(60_000);
  const app = await buildGateway({
    bus,
    redis,
    logger,
    registry: runtime.registry,
    telemetry: runtime.telemetry,
    directory,
    revoked,
    rateLimits: config,
    version: runtime.version,
    bodyLimit: config.BODY_LIMIT_BYTES,
    trustProxy: config.TRUST_PROXY,
    redisTimeoutMs: config.REDIS_TIMEOUT_MS,
    tokenIssuer: config.TOKEN_ISSUER,
    tokenAudience: config.TOKEN_AUDIENCE,
    jobOutputInlineMaxBytes: config.JOB_OUTPUT_INLINE_MAX_BYTES,
  });
  await app.listen({ host: config.HTTP_HOST, port: config.HTTP_PORT }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'EADDRINUSE') throw new Error(`port ${config.HTTP_PORT} on ${config.HTTP_HOST} is already taken (set HTTP_PORT)`);
    throw error;
  });
  logger.info({ url: `http://${config.HTTP_HOST}:${config.HTTP_PORT}` }, 'gateway listening');

  return {
    dependencies: [{ name: 'redis', check: async () => void (await redis.ping()) }],
    async stop() {
      directory.stop();
      revoked.stop();
      await app.close();
      redis.disconnect();
    },
  };
}
