import { databaseEnv } from '@runnerhub/database';
import { secretsEnv } from '@runnerhub/secrets';
import { commonEnv } from '@runnerhub/service-kit';

export const inventoryEnv = {
  ...commonEnv({ metricsPort: 9412 }),
  ...databaseEnv('inventory'),
  ...secretsEnv,
};
