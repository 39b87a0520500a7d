import { runService } from '@runnerhub/service-kit';
import { schedulerEnv } from './config.js';

await runService({
  name: 'scheduler',
  version: '0.1.0',
  description: 'Scripts, schedules, workflows, pipelines and the run/task state machine',
  env: schedulerEnv,
  // Imported after telemetry starts so that pg is instrumented.
  start: async (runtime) => (await import('./app.js')).startScheduler(runtime),
});
