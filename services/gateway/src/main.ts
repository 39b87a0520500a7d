import { runService } from '@runnerhub/service-kit';
import { gatewayEnv } from './config.js';

await runService({
  name: 'gateway',
  version: '0.1.0',
  description: 'HTTP edge: the five public APIs over one domain',
  env: gatewayEnv,
  metricsServer: false,
  // Imported after telemetry starts so that http, fastify and ioredis are instrumented.
  start: async (runtime) => (await import('./app.js')).startGateway(runtime),
});
