import { env } from '@runnerhub/config';
import { commonEnv } from '@runnerhub/service-kit';

/** The documented rate limits (DESIGN.md §1); each is a default a deployment may change or turn off. */
export const rateLimitEnv = {
  RATE_LIMITS_ENABLED: env.bool('Enforce rate limits; false turns every limit off', true),
  RATE_LIMIT_USER_PER_HOUR: env.int('Requests per hour per user (per client address when unauthenticated); 0 = unlimited', 1_000),
  RATE_LIMIT_LOGIN_PER_MINUTE: env.int('Login attempts per minute per account and per client address, registrations per address; 0 = unlimited', 5),
  RATE_LIMIT_LOGIN_PER_15_MINUTES: env.int('Login attempts per 15 minutes per account and per client address, registrations per address; 0 = unlimited', 10),
};

export const gatewayEnv = {
  ...commonEnv({ metricsPort: 3001 }),
  HTTP_HOST: env.string('Address the HTTP API listens on', '127.0.0.1'),
  HTTP_PORT: env.port('Port of the HTTP API (also serves /metrics)', 3001),
  REDIS_URL: env.string('Redis URL (rate limits, caches)', 'redis://127.0.0.1:16379'),
  REDIS_TIMEOUT_MS: env.int('Timeout of a Redis command and connect', 1_000, 1),
  BODY_LIMIT_BYTES: env.int('Largest accepted request body', 1_048_576, 1024),
  DISCOVERY_INTERVAL_MS: env.int('How often the gateway looks for services with $SRV.INFO', 2_000, 100),
  TOKEN_TTL_SECONDS: env.int('Lifetime of access tokens, as identity issues them: how long a revoked session is remembered', 3600, 1),
  TOKEN_ISSUER: env.string('Issuer (iss) an access token must carry; the same as identity\'s', 'runnerhub-identity'),
  TOKEN_AUDIENCE: env.string('Audience (aud) an access token must carry; the same as identity\'s', 'runnerhub'),
  TRUST_PROXY: env.bool('Take the client address from X-Forwarded-For', false),
  ...rateLimitEnv,
  // /logs, /stdout and /stderr always answer all of it.
  JOB_OUTPUT_INLINE_MAX_BYTES: env.int('Most bytes of each of output, stdout and stderr that GET /api/v1/jobs/:id inlines (the end of each; output_truncated says when output was cut)', 1_048_576),
};
