import { commonEnv } from '@runnerhub/service-kit';

export const executorEnv = {
  ...commonEnv({ metricsPort: 9414 }),
};
