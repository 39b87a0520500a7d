import { commonEnv } from '@runnerhub/service-kit';

export const metricsEnv = {
  ...commonEnv({ metricsPort: 9416 }),
};
