import { runService } from '@runnerhub/service-kit';
import { executorEnv } from './config.js';

await runService({
  name: 'executor',
  version: '0.1.0',
  description: 'Runs work over SSH, Docker and locally, and streams its output',
  env: executorEnv,
  // Imported after telemetry starts so that what it uses is instrumented.
  start: async (runtime) => (await import('./app.js')).startExecutor(runtime),
});
