import type { Registry } from "prom-client";
import { Bus, implement, ownerToken, serveService, type Registration } from '@runnerhub/bus';
import { ConfigError, parseConfig, type ConfigOf, type EnvShape } from '@runnerhub/config';
import { Health } from '@runnerhub/contracts';
import { createLogger, createMetricsRegistry, startMetricsServer, startTelemetry, type Logger, type Telemetry } from '@runnerhub/observability';
import type { CommonEnv } from './env.js';
import { checkHealth, type DependencyCheck } from './health.js';
import { startWatchdog } from './watchdog.js';

type CommonConfig = ConfigOf<CommonEnv>;

/** What a service's start function gets: its parsed config and the shared plumbing. */
export interface ServiceRuntime<C extends CommonConfig = CommonConfig> {
  name: string;
  version: string;
  config: C;
  logger: Logger;
  registry: Registry;
  bus: Bus;
  telemetry: Telemetry;
}

/** What a started service hands back: its bus endpoints, what its health depends on, how to stop. */
export interface StartedService {
  registrations?: Registration[];
  dependencies?: DependencyCheck[];
  stop?(): Promise<void>;
}

export interface ServiceDefinition<S extends EnvShape> {
  name: string;
  version: string;
  description: string;
  env: S;
  /** False for the gateway, which serves /metrics on its own HTTP port. */
  metricsServer?: boolean;
  start(runtime: ServiceRuntime<ConfigOf<S> & CommonConfig>): Promise<StartedService>;
}

export interface RunningService {
  runtime: ServiceRuntime;
  stop(): Promise<void>;
}

/**
 * Starts a service the same way for all seven: telemetry first (so later
 * imports are instrumented), then metrics, the bus, the service's own start,
 * and finally its endpoints plus the shared health check on the bus.
 */
export async function startService<S extends EnvShape>(definition: ServiceDefinition<S>, environment: NodeJS.ProcessEnv = process.env): Promise<RunningService> {
  const startedAt = Date.now();
  const config = parseConfig(definition.env, environment) as ConfigOf<S> & CommonConfig;
  const logger = createLogger({ service: definition.name, level: config.LOG_LEVEL });
  const telemetry = await startTelemetry({ service: definition.name, version: definition.version, otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT });
  const registry = createMetricsRegistry(definition.name);
  const metricsServer = definition.metricsServer === false ? undefined : await startMetricsServer({ registry, host: config.METRICS_HOST, port: config.METRICS_PORT });
  const bus = await Bus.connect({ servers: config.NATS_URL.split(','), name: definition.name, logger, registry, requestTimeoutMs: config.BUS_REQUEST_TIMEOUT_MS });
  const runtime: ServiceRuntime<ConfigOf<S> & CommonConfig> = { name: definition.name, version: definition.version, config, logger, registry, bus, telemetry };

  const started = await definition.start(runtime);
  const dependencies: DependencyCheck[] = [
    { name: 'nats', check: async () => { if (!bus.isConnected) throw new Error('disconnected'); } },
    ...(started.dependencies ?? []),
  ];
  const service = await serveService(bus, { name: definition.name, version: definition.version, description: definition.description }, [
    ...(started.registrations ?? []),
    implement(Health, { check: async () => checkHealth({ name: definition.name, version: definition.version, startedAt }, dependencies, config.HEALTH_CHECK_TIMEOUT_MS) }, ownerToken(definition.name)),
  ]);
  logger.info({ version: definition.version, metricsPort: metricsServer?.port }, 'service started');

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      logger.info({}, 'service stopping');
      await service.stop();
      await started.stop?.();
      await bus.drain();
      await metricsServer?.close();
      await telemetry.shutdown();
    })();
    return stopping;
  };
  return { runtime: runtime as unknown as ServiceRuntime, stop };
}

/**
 * The entry point of a service process: starts it, stops it cleanly on
 * SIGTERM/SIGINT, turns start-up failures into one clear line, and ends it
 * when its main thread stops running (see startWatchdog).
 */
export async function runService<S extends EnvShape>(definition: ServiceDefinition<S>): Promise<void> {
  let running: RunningService;
  try {
    running = await startService(definition);
  } catch (error) {
    const message = error instanceof ConfigError ? error.message : `could not start: ${(error as Error).message}`;
    process.stderr.write(`${definition.name}: ${message}\n`);
    process.exit(1);
  }
  const { MAIN_THREAD_STALL_MS } = running.runtime.config;
  if (MAIN_THREAD_STALL_MS > 0) startWatchdog({ stallMs: MAIN_THREAD_STALL_MS, service: definition.name });
  const shutdown = (signal: string) => {
    const grace = setTimeout(() => {
      process.stderr.write(`${definition.name}: still stopping after ${running.runtime.config.SHUTDOWN_GRACE_MS} ms, exiting\n`);
      process.exit(1);
    }, running.runtime.config.SHUTDOWN_GRACE_MS);
    grace.unref();
    running.runtime.logger.info({ signal }, 'signal received');
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        running.runtime.logger.error({ err: error }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
