import { runService } from '@runnerhub/service-kit';
import { githubSyncEnv } from './config.js';

await runService({
  name: 'github-sync',
  version: '0.1.0',
  description: 'GitHub credentials, repositories, workflow runs and webhook deliveries',
  env: githubSyncEnv,
  start: async () => ({}),
});
