import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Redis } from 'ioredis';
import type { Bus } from '@runnerhub/bus';
import { createHttpMetrics, type Logger, type Telemetry } from '@runnerhub/observability';
import { auditRoutes } from './dialects/audit.js';
import { authRoutes } from './dialects/auth.js';
import { ServiceDirectory } from './health/directory.js';
import { healthRoutes } from './health/routes.js';
import { auditPlugin } from './plugins/audit.js';
import { authPlugin } from './plugins/auth.js';
import { errorsPlugin } from './plugins/errors.js';
import { jsonPlugin } from './plugins/json.js';
import { VerificationKeys } from './plugins/keys.js';
import { rateLimitPlugin, type RateLimitConfig } from './plugins/rate-limit.js';
import type { RevokedSessions } from './plugins/revocations.js';
import { githubOAuthRoutes } from './dialects/oauth.js';
import { organizationRoutes } from './dialects/organizations.js';
import { userRoutes } from './dialects/users.js';
import { birunServerRoutes } from './dialects/birun-servers.js';
import { nodeRoutes } from './dialects/nodes.js';
import { serverRoutes } from './dialects/servers.js';
import { jobRoutes } from './dialects/jobs.js';
import { systemRoutes } from './dialects/system.js';

export interface GatewayDependencies {
  bus: Bus;
  redis: Redis;
  logger: Logger;
  registry: Registry;
  telemetry: Telemetry;
  directory: ServiceDirectory;
  revoked: RevokedSessions;
  rateLimits: RateLimitConfig;
  version: string;
  bodyLimit: number;
  trustProxy: boolean;
  redisTimeoutMs: number;
  tokenIssuer: string;
  tokenAudience: string;
  /** Most bytes of each of output, stdout and stderr that GET /api/v1/jobs/:id inlines. */
  jobOutputInlineMaxBytes: number;
}

/** The HTTP edge: plugins for errors, auth and metrics, then one route module per concern. */
export async function buildGateway(deps: GatewayDependencies): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request log lines cost more than they tell at this volume; metrics and traces cover requests.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimit,
    trustProxy: deps.trustProxy,
    genReqId: (request) => (typeof request.headers['x-request-id'] === 'string' ? request.headers['x-request-id'] : randomUUID()),
  });
  await app.register(deps.telemetry.fastifyPlugin() as never);
  await app.register(errorsPlugin);
  await app.register(jsonPlugin);

  const httpMetrics = createHttpMetrics(deps.registry);
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    httpMetrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    httpMetrics.duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', deps.registry.contentType);
    return deps.registry.metrics();
  });

  await app.register(auditPlugin, { bus: deps.bus, registry: deps.registry });
  await app.register(authPlugin, { keys: new VerificationKeys(deps.bus), revoked: deps.revoked, issuer: deps.tokenIssuer, audience: deps.tokenAudience });
  await app.register(rateLimitPlugin, { redis: deps.redis, registry: deps.registry, timeoutMs: deps.redisTimeoutMs, config: deps.rateLimits });
  await app.register(healthRoutes, { bus: deps.bus, redis: deps.redis, directory: deps.directory, version: deps.version, redisTimeoutMs: deps.redisTimeoutMs });
  await app.register(authRoutes, { bus: deps.bus, revoked: deps.revoked });
  await app.register(userRoutes, { bus: deps.bus });
  await app.register(organizationRoutes, { bus: deps.bus });
  await app.register(auditRoutes, { bus: deps.bus });
  await app.register(githubOAuthRoutes, { bus: deps.bus });
  await app.register(serverRoutes, { bus: deps.bus });
  await app.register(birunServerRoutes, { bus: deps.bus });
  await app.register(nodeRoutes, { bus: deps.bus });
  await app.register(jobRoutes, { bus: deps.bus, inlineOutputBytes: deps.jobOutputInlineMaxBytes });
  await app.register(systemRoutes, { bus: deps.bus });
  return app;
}
