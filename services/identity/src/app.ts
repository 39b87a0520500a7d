import type { ConfigOf } from '@runnerhub/config';
import { databaseDependency, poolOptions } from '@runnerhub/database';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { publishEvent, subscribeEvents } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import { SecretBox } from '@runnerhub/secrets';
import type { ServiceRuntime, StartedService } from '@runnerhub/service-kit';
import { AuditConsumer } from './adapters/audit-consumer.js';
import { createDatabase } from './adapters/database.js';
import type { identityEnv } from './config.js';
import { Accounts } from './domain/accounts.js';
import { AuditLog } from './domain/audit.js';
import { PasswordHasher } from './domain/passwords.js';
import { ProfileCache } from './domain/profile-cache.js';
import { TokenIssuer } from './domain/tokens.js';
import { Organizations } from './domain/organizations.js';
import { Sessions } from './domain/sessions.js';
import { OrganizationUsers } from './domain/users.js';
import { auditHandlers } from './handlers/audit.js';
import { authHandlers } from './handlers/auth.js';
import { organizationsHandlers } from './handlers/organizations.js';
import { githubOAuthHandlers } from './handlers/oauth.js';
import { usersHandlers } from './handlers/users.js';

export type IdentityConfig = ConfigOf<typeof identityEnv>;

export async function startIdentity(runtime: ServiceRuntime<IdentityConfig>): Promise<StartedService> {
  const { config, logger } = runtime;
  const { db, pool } = createDatabase(poolOptions(config, logger));
  const box = SecretBox.fromConfig(config);
  const tokenSettings = {
    issuer: config.TOKEN_ISSUER,
    audience: config.TOKEN_AUDIENCE,
    accessTtlSeconds: config.TOKEN_TTL_SECONDS,
    refreshTtlSeconds: config.REFRESH_TOKEN_TTL_SECONDS,
  };
  const tokens = await TokenIssuer.load(db, box, tokenSettings);
  const passwords = new PasswordHasher(
    { memoryCost: config.ARGON2_MEMORY_KIB, timeCost: config.ARGON2_TIME_COST, parallelism: config.ARGON2_PARALLELISM },
    config.PASSWORD_MIN_LENGTH,
  );
  const profiles = new ProfileCache(config.PROFILE_CACHE_TTL_MS);
  const userChanged = (userId: string) => {
    profiles.invalidate(userId);
    publishEvent(runtime.bus, `events.identity.user.${userId}.changed`, identityV1.UserChangedSchema, { userUid: userId });
  };
  const invalidations = subscribeEvents(runtime.bus, 'events.identity.user.*.changed', identityV1.UserChangedSchema, (event) => profiles.invalidate(event.userUid));
  const sessions = new Sessions(db, tokens, {
    revoked: (sessionId, until) =>
      publishEvent(runtime.bus, `events.identity.session.${sessionId}.revoked`, identityV1.SessionRevokedSchema, { sessionId, revokedUntil: timestampFromDate(until) }),
  });
  const accounts = new Accounts(db, passwords, sessions, profiles, userChanged);
  const organizations = new Organizations(db, accounts, userChanged);
  const users = new OrganizationUsers(db, organizations, passwords, sessions, userChanged);
  if (config.ADMIN_PASSWORD) {
    const created = await accounts.ensureInitialAdmin({ username: config.ADMIN_USERNAME, password: config.ADMIN_PASSWORD, email: config.ADMIN_EMAIL });
    if (created) logger.info({ username: config.ADMIN_USERNAME }, 'initial admin created');
  } else {
    logger.warn({}, 'ADMIN_PASSWORD is not set: no initial admin account');
  }
  const auditLog = new AuditLog(db, pool);
  const auditConsumer = new AuditConsumer(runtime.bus, auditLog, logger, { batchSize: config.AUDIT_BATCH_SIZE, ackWaitMs: config.AUDIT_ACK_WAIT_MS });
  auditConsumer.start();

  return {
    registrations: [
      auditHandlers(auditLog),
      ...authHandlers(accounts, sessions, db, tokenSettings),
      ...usersHandlers(accounts, users),
      ...organizationsHandlers(organizations),
      githubOAuthHandlers({ config, db, accounts, logger }),
    ],
    dependencies: [databaseDependency(pool)],
    async stop() {
      invalidations.unsubscribe();
      await auditConsumer.stop();
      await db.$disconnect();
      await pool.end();
    },
  };
}
