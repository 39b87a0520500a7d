import { env } from '@runnerhub/config';
import { commonEnv } from '@runnerhub/service-kit';

export const gatewayEnv = {
  ...commonEnv({ metricsPort: 3001 }),
  HTTP_HOST: env.string('Address the HTTP API listens on', '127.0.0.1'),
  HTTP_PORT: env.port('Port of the HTTP API (also serves /metrics)', 3001),
  REDIS_URL: env.string('Redis URL (rate limits, caches)', 'redis://127.0.0.1:16379'),
  REDIS_TIMEOUT_MS: env.int('Timeout of a Redis command and connect', 1_000, 1),
  BODY_LIMIT_BYTES: env.int('Largest accepted request body', 1_048_576, 1024),
  DISCOVERY_INTERVAL_MS: env.int('How often the gateway looks for services with $SRV.INFO', 2_000, 100),
  TOKEN_ISSUER: env.string('Issuer (iss) an access token must carry; the same as identity\'s', 'runnerhub-identity'),
  TOKEN_AUDIENCE: env.string('Audience (aud) an access token must carry; the same as identity\'s', 'runnerhub'),
  TRUST_PROXY: env.bool('Take the client address from X-Forwarded-For', false),
};
