import { env } from '@runnerhub/config';
import { databaseEnv } from '@runnerhub/database';
import { secretsEnv } from '@runnerhub/secrets';
import { commonEnv } from '@runnerhub/service-kit';

export const identityEnv = {
  ...commonEnv({ metricsPort: 9411 }),
  ...databaseEnv('identity'),
  ...secretsEnv,
  TOKEN_TTL_SECONDS: env.int('Lifetime of an access token (expiresIn)', 3600, 60),
  REFRESH_TOKEN_TTL_SECONDS: env.int('Lifetime of a refresh token', 30 * 24 * 3600, 60),
  TOKEN_ISSUER: env.string('Issuer (iss) of access tokens', 'runnerhub-identity'),
  TOKEN_AUDIENCE: env.string('Audience (aud) of access tokens', 'runnerhub'),
  PASSWORD_MIN_LENGTH: env.int('Minimum password length', 8, 1),
  ARGON2_MEMORY_KIB: env.int('argon2id memory cost in KiB', 19_456, 1024),
  ARGON2_TIME_COST: env.int('argon2id iterations', 2, 1),
  ARGON2_PARALLELISM: env.int('argon2id lanes', 1, 1),
  PROFILE_CACHE_TTL_MS: env.int('How long a user read for a request is kept in memory (changes invalidate it at once)', 60_000, 0),
  ADMIN_USERNAME: env.string('Username of the initial admin, created on first start', 'admin'),
  ADMIN_PASSWORD: env.optionalString('Password of the initial admin; unset = no initial admin is created'),
  ADMIN_EMAIL: env.optionalString('Email of the initial admin'),
  AUDIT_BATCH_SIZE: env.int('Most audit records pulled from JetStream at a time and stored by one INSERT', 100, 1),
  AUDIT_ACK_WAIT_MS: env.int('How long JetStream waits for an audit record to be stored before it redelivers it', 30_000, 1_000),
  // GitHub sign-in (RustCI's OAuth flow): off until both client id and secret are set.
  GITHUB_API_URL: env.url('Base URL of the GitHub REST API (GitHub Enterprise: https://HOST/api/v3)', 'https://api.github.com'),
  GITHUB_WEB_URL: env.url('Base URL of GitHub\'s web pages, where the OAuth authorize and token endpoints live', 'https://github.com'),
  GITHUB_CLIENT_ID: env.optionalString('Client ID of the GitHub OAuth app used for sign-in; unset = GitHub sign-in is off'),
  GITHUB_CLIENT_SECRET: env.optionalString('Client secret of the GitHub OAuth app used for sign-in'),
  GITHUB_OAUTH_CALLBACK_URL: env.optionalUrl('Where GitHub sends users back: the gateway\'s /v1/auth/github/callback as browsers reach it; unset = the OAuth app\'s registered callback URL'),
  GITHUB_OAUTH_STATE_SECRET: env.optionalString('Key signing the OAuth state parameter; unset = derived from SECRETS_KEY'),
  GITHUB_TIMEOUT_MS: env.int('Timeout of one request to GitHub', 10_000, 1),
  GITHUB_CIRCUIT_RESET_MS: env.int('After GitHub failed repeatedly, how long calls to it fail fast before one is tried again', 30_000, 1),
};
