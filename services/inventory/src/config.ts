import { env } from '@runnerhub/config';
import { commonEnv } from '@runnerhub/service-kit';

export const inventoryEnv = {
  ...commonEnv({ metricsPort: 9412 }),
  DATABASE_URL: env.string('PostgreSQL URL of the inventory database', 'postgresql://runnerhub:runnerhub@127.0.0.1:15432/inventory'),
  DATABASE_POOL_SIZE: env.int('Connections in the database pool', 10, 1),
  DATABASE_TIMEOUT_MS: env.int('Timeout of a database statement and of acquiring a connection', 5_000, 1),
  SECRETS_KEY: env.string(
    'Base64 of 32 bytes sealing secrets at rest (SSH passwords and private keys); the default is for development only',
    'ZGV2ZWxvcG1lbnQtb25seS1zZWNyZXRzLWtleS0zMiE=',
  ),
  SECRETS_KEY_ID: env.string('Name of SECRETS_KEY, stored beside each sealed secret so keys can rotate', 'dev'),
};
