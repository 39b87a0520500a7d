import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { deployMigrations } from '@runnerhub/db-migrate';
import { assertPortFree, InfraError, startNats, startPostgres, startRedis, waitFor, type NatsServer, type PostgresServer, type RedisServer } from '@runnerhub/infra';
import { databaseName, dataOwningServices, schemaPath, SERVICE_NAMES, ServiceProcess, type ServiceName } from './services.js';

export interface StackPorts {
  nats?: number;
  postgres?: number;
  redis?: number;
  gateway?: number;
  /** First of the per-service /metrics ports; 0 = any free port. */
  metricsBase?: number;
}

export interface StackOptions {
  dataDir: string;
  ports?: StackPorts;
  /** Extra environment for every service (and per service, which wins). */
  env?: Record<string, string>;
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  services?: readonly ServiceName[];
  /** Processes outlive the caller (the `up` command) instead of being its children. */
  detached?: boolean;
}

export interface Stack {
  nats: NatsServer;
  postgres: PostgresServer;
  redis: RedisServer;
  gatewayUrl: string;
  services: Map<ServiceName, ServiceProcess>;
  /** Resolves once /health reports every started service healthy. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export const ADMIN = { username: 'admin', password: 'admin-password-change-me', email: 'admin@runnerhub.local' };

/** Infrastructure only: NATS (JetStream), PostgreSQL with one migrated database per data-owning service, Redis. */
export async function startInfrastructure(options: StackOptions): Promise<{ nats: NatsServer; postgres: PostgresServer; redis: RedisServer }> {
  mkdirSync(options.dataDir, { recursive: true });
  const [nats, postgres, redis] = await Promise.all([
    startNats({ dataDir: join(options.dataDir, 'nats'), port: options.ports?.nats }),
    startPostgres({ dataDir: join(options.dataDir, 'postgres'), port: options.ports?.postgres }),
    startRedis({ dataDir: join(options.dataDir, 'redis'), port: options.ports?.redis }),
  ]);
  for (const service of dataOwningServices()) {
    await postgres.createDatabase(databaseName(service));
    await deployMigrations({ schemaPath: schemaPath(service), databaseUrl: postgres.url(databaseName(service)) });
  }
  return { nats, postgres, redis };
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const gatewayPort = options.ports?.gateway ?? 3001;
  await assertPortFree(gatewayPort, 'the gateway');
  const { nats, postgres, redis } = await startInfrastructure(options);
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  const names = options.services ?? SERVICE_NAMES;
  const services = new Map<ServiceName, ServiceProcess>();
  const metricsBase = options.ports?.metricsBase ?? 0;

  names.forEach((name, index) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NATS_URL: nats.url,
      REDIS_URL: redis.url,
      HTTP_PORT: String(gatewayPort),
      METRICS_PORT: String(metricsBase === 0 ? 0 : metricsBase + index),
      // glibc gives each libuv worker thread its own malloc arena; argon2's 19 MiB
      // buffers then stay resident in several of them. Two arenas are plenty.
      MALLOC_ARENA_MAX: '2',
      ADMIN_USERNAME: ADMIN.username,
      ADMIN_PASSWORD: ADMIN.password,
      ADMIN_EMAIL: ADMIN.email,
      ...(dataOwningServices().includes(name) ? { DATABASE_URL: postgres.url(databaseName(name)) } : {}),
      ...options.env,
      ...options.serviceEnv?.[name],
    };
    const service = new ServiceProcess(name, env, options.dataDir, options.detached ?? false);
    service.start();
    services.set(name, service);
  });

  const stack: Stack = {
    nats,
    postgres,
    redis,
    gatewayUrl,
    services,
    async waitHealthy(timeoutMs = 30_000) {
      await waitFor('every service to report healthy', async () => {
        for (const [name, service] of services) {
          if (!service.isRunning()) throw new InfraError(`${name} exited during start; see ${service.logFile}`);
        }
        const report = await fetch(`${gatewayUrl}/health`).then((r) => r.json() as Promise<{ services?: Record<string, string> }>).catch(() => undefined);
        return names.every((name) => name === 'gateway' || report?.services?.[name] === 'healthy');
      }, timeoutMs);
    },
    async stop() {
      const gateway = services.get('gateway');
      await gateway?.stop();
      await Promise.all([...services.values()].map((s) => s.stop()));
      await Promise.all([nats.stop(), postgres.stop(), redis.stop()]);
    },
  };
  return stack;
}
