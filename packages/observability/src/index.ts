export { createLogger, DEFAULT_REDACT_PATHS, type Logger, type LoggerOptions } from './logger.js';
export { startTelemetry, type Telemetry, type TelemetryOptions } from './telemetry.js';
export {
  createHttpMetrics,
  createMetricsRegistry,
  startMetricsServer,
  type HttpMetrics,
  type MetricsServer,
} from './metrics.js';
