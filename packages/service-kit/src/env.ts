import { env } from '@runnerhub/config';

/** Variables every service reads; each service adds its own beside them. */
export function commonEnv(defaults: { metricsPort: number }) {
  return {
    NATS_URL: env.string('NATS server URL(s), comma-separated', 'nats://127.0.0.1:14222'),
    LOG_LEVEL: env.enumOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const, 'Log level', 'info'),
    METRICS_HOST: env.string('Address of the Prometheus /metrics server', '127.0.0.1'),
    METRICS_PORT: env.port('Port of the Prometheus /metrics server (0 = any free port)', defaults.metricsPort),
    OTEL_EXPORTER_OTLP_ENDPOINT: env.optionalUrl('OTLP/HTTP endpoint for traces, e.g. http://127.0.0.1:4318; unset = no export'),
    BUS_REQUEST_TIMEOUT_MS: env.int('Default timeout of a bus request', 5_000, 1),
    HEALTH_CHECK_TIMEOUT_MS: env.int('Timeout of each dependency check in a health check', 1_000, 1),
    ACCESS_CACHE_MS: env.int("How long a caller's granted role in an organisation is reused before identity is asked again (a change in identity drops it at once); 0 = ask every time", 5_000, 0),
    SHUTDOWN_GRACE_MS: env.int('How long a stopping service waits for in-flight work before it exits', 10_000, 0),
    MAIN_THREAD_STALL_MS: env.int('A service whose main thread has not run for this long (a deadlock, an endless loop) ends itself, for its supervisor to restart it; 0 = never', 30_000, 0),
  };
}

export type CommonEnv = ReturnType<typeof commonEnv>;
