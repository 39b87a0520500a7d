import { commonEnv } from '@runnerhub/service-kit';

export const schedulerEnv = {
  ...commonEnv({ metricsPort: 9413 }),
};
