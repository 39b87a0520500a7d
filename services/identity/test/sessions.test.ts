import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { deployMigrations } from '@runnerhub/db-migrate';
import { startThrowawayPostgres, type ThrowawayPostgres } from '@runnerhub/infra';
import { SecretBox } from '@runnerhub/secrets';
import { createDatabase, type IdentityDb } from '../src/adapters/database.js';
import { Accounts } from '../src/domain/accounts.js';
import { Organizations } from '../src/domain/organizations.js';
import { PasswordHasher } from '../src/domain/passwords.js';
import { ProfileCache } from '../src/domain/profile-cache.js';
import { Sessions } from '../src/domain/sessions.js';
import { TokenIssuer } from '../src/domain/tokens.js';
import { OrganizationUsers } from '../src/domain/users.js';

let postgres: ThrowawayPostgres;
let db: IdentityDb;
let pool: { end(): Promise<void> };
let accounts: Accounts;
let sessions: Sessions;
let organizations: Organizations;
let users: OrganizationUsers;
const revoked: string[] = [];

beforeAll(async () => {
  postgres = await startThrowawayPostgres();
  const url = await postgres.freshDatabase('identity');
  await deployMigrations({ schemaPath: join(new URL('.', import.meta.url).pathname, '../prisma/schema.prisma'), databaseUrl: url });
  ({ db, pool } = createDatabase({ url, poolSize: 5, timeoutMs: 5_000 }));
  const tokens = await TokenIssuer.load(db, new SecretBox('k', { k: randomBytes(32).toString('base64') }), { issuer: 'i', audience: 'a', accessTtlSeconds: 600, refreshTtlSeconds: 3600 });
  const passwords = new PasswordHasher({ memoryCost: 4096, timeCost: 1, parallelism: 1 }, 8);
  const profiles = new ProfileCache(60_000);
  const changed = (userId: string) => profiles.invalidate(userId);
  sessions = new Sessions(db, tokens, { revoked: (sessionId) => revoked.push(sessionId) });
  accounts = new Accounts(db, passwords, sessions, profiles, changed);
  organizations = new Organizations(db, accounts, changed);
  users = new OrganizationUsers(db, organizations, passwords, sessions, changed);
}, 60_000);

afterAll(async () => {
  await db?.$disconnect();
  await pool?.end();
  await postgres?.dispose();
});

test('of two concurrent refreshes with one token exactly one wins and the session is revoked', async () => {
  await accounts.register({ email: 'race@example.com', fullName: 'Race', password: 'a-long-password' });
  const session = await accounts.login('race@example.com', 'a-long-password');
  const results = await Promise.allSettled([
    sessions.refresh(session.refreshToken, (id) => accounts.me(id)),
    sessions.refresh(session.refreshToken, (id) => accounts.me(id)),
  ]);
  expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
  expect(revoked).toContain(session.sessionId);
  expect(await sessions.recentlyRevoked()).toContain(session.sessionId);
  const winner = results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ refreshToken: string }>;
  await expect(sessions.refresh(winner.value.refreshToken, (id) => accounts.me(id))).rejects.toMatchObject({ code: 'AUTH_INVALID' });
});

test('deactivating a user revokes their sessions and refuses new logins', async () => {
  const admin = await accounts.register({ email: 'boss@example.com', fullName: 'Boss', password: 'a-long-password' });
  const member = await users.create(admin.id, '', { username: 'worker', password: 'a-long-password', role: 'operator' });
  const session = await accounts.login('worker', 'a-long-password');
  await users.update(admin.id, '', member.id, { active: false });
  expect(revoked).toContain(session.sessionId);
  await expect(accounts.login('worker', 'a-long-password')).rejects.toMatchObject({ code: 'AUTH_INVALID' });
});

test('removing a user from their only organisation deletes the account; from one of two keeps it', async () => {
  const admin = await accounts.register({ email: 'owner@example.com', fullName: 'Owner', password: 'a-long-password' });
  const member = await users.create(admin.id, '', { username: 'temp', password: 'a-long-password', role: 'viewer' });
  await users.remove(admin.id, '', member.id);
  expect(await db.user.findUnique({ where: { id: member.id } })).toBeNull();

  const other = await accounts.register({ email: 'other@example.com', fullName: 'Other', password: 'a-long-password' });
  const shared = await organizations.create(other.id, { name: 'Shared', shortName: 'shared' });
  const both = await users.create(admin.id, '', { username: 'both', password: 'a-long-password', role: 'viewer' });
  await db.membership.create({ data: { userId: both.id, organizationId: shared.organizationId, role: 'viewer' } });
  await users.remove(admin.id, '', both.id);
  const kept = await db.user.findUniqueOrThrow({ where: { id: both.id } });
  expect(kept.defaultOrganizationId).toBe(shared.organizationId);
});

test('an organisation is found by uid or short name only by its members', async () => {
  const alice = await accounts.register({ email: 'alice2@example.com', fullName: 'Alice', password: 'a-long-password' });
  const bob = await accounts.register({ email: 'bob2@example.com', fullName: 'Bob', password: 'a-long-password' });
  const team = await organizations.create(alice.id, { name: 'Team', shortName: 'team' });
  expect((await organizations.authorize(alice.id, 'TEAM')).organizationId).toBe(team.organizationId);
  expect((await organizations.authorize(alice.id, team.organizationId, 'admin')).role).toBe('admin');
  await expect(organizations.authorize(bob.id, 'team')).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
  await expect(organizations.update(bob.id, team.organizationId, { name: 'Mine' })).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
  await expect(organizations.create(bob.id, { name: 'Bad', shortName: 'no spaces' })).rejects.toMatchObject({ code: 'VALIDATION_ERROR', field: 'short_name' });
});
