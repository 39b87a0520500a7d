import { ensureStreams } from '@runnerhub/bus';
import { runService } from '@runnerhub/service-kit';
import { schedulerEnv } from './config.js';

await runService({
  name: 'scheduler',
  version: '0.1.0',
  description: 'Scripts, schedules, workflows, pipelines and the run/task state machine',
  env: schedulerEnv,
  // Both ends of the JOBS stream make sure it exists, whichever starts first.
  start: async ({ bus }) => {
    await ensureStreams(bus);
    return {};
  },
});
