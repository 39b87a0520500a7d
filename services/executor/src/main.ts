import { ensureStreams } from '@runnerhub/bus';
import { runService } from '@runnerhub/service-kit';
import { executorEnv } from './config.js';

await runService({
  name: 'executor',
  version: '0.1.0',
  description: 'Runs work over SSH, Docker and locally, and streams its output',
  env: executorEnv,
  // Both ends of the JOBS stream make sure it exists, whichever starts first.
  start: async ({ bus }) => {
    await ensureStreams(bus);
    return {};
  },
});
