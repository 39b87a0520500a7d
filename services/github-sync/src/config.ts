import { commonEnv } from '@runnerhub/service-kit';

export const githubSyncEnv = {
  ...commonEnv({ metricsPort: 9415 }),
};
