import { commonEnv } from '@runnerhub/service-kit';

export const inventoryEnv = {
  ...commonEnv({ metricsPort: 9412 }),
};
