import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createVerifier } from 'fast-jwt';
import { deployMigrations } from '@runnerhub/db-migrate';
import { startThrowawayPostgres, type ThrowawayPostgres } from '@runnerhub/infra';
import { SecretBox } from '@runnerhub/secrets';
import { BusError } from '@runnerhub/bus';
import { createDatabase, type IdentityDb } from '../src/adapters/database.js';
import { Accounts } from '../src/domain/accounts.js';
import { PasswordHasher } from '../src/domain/passwords.js';
import { ProfileCache } from '../src/domain/profile-cache.js';
import { Sessions } from '../src/domain/sessions.js';
import { TokenIssuer, verificationKeys } from '../src/domain/tokens.js';

const settings = { issuer: 'test-issuer', audience: 'test-audience', accessTtlSeconds: 3600, refreshTtlSeconds: 86_400 };
const box = new SecretBox('k1', { k1: randomBytes(32).toString('base64') });
let postgres: ThrowawayPostgres;
let db: IdentityDb;
let pool: { end(): Promise<void> };
let accounts: Accounts;
let tokens: TokenIssuer;
const profiles = new ProfileCache(60_000);
const changed: string[] = [];

beforeAll(async () => {
  postgres = await startThrowawayPostgres();
  const url = await postgres.freshDatabase('identity');
  await deployMigrations({ schemaPath: join(new URL('.', import.meta.url).pathname, '../prisma/schema.prisma'), databaseUrl: url });
  ({ db, pool } = createDatabase({ url, poolSize: 5, timeoutMs: 5_000 }));
  tokens = await TokenIssuer.load(db, box, settings);
  const sessions = new Sessions(db, tokens, { revoked: () => {} });
  accounts = new Accounts(db, new PasswordHasher({ memoryCost: 4096, timeCost: 1, parallelism: 1 }, 8), sessions, profiles, (userId) => {
    changed.push(userId);
    profiles.invalidate(userId);
  });
}, 60_000);

afterAll(async () => {
  await db?.$disconnect();
  await pool?.end();
  await postgres?.dispose();
});

test('registration creates the user, a personal organisation and an admin membership together', async () => {
  const user = await accounts.register({ email: 'Alice@Example.com', fullName: 'Alice', password: 'a-long-password' });
  expect(user.email).toBe('alice@example.com');
  expect(user.username).toBe('alice@example.com');
  expect(user.memberships).toHaveLength(1);
  expect(user.memberships[0]).toMatchObject({ role: 'admin', organization: { type: 'personal', name: 'Alice' } });
  expect(user.defaultOrganizationId).toBe(user.memberships[0]!.organizationId);
  expect(user.passwordHash).toMatch(/^\$argon2id\$/);
});

test('a failed registration leaves no half-created organisation behind', async () => {
  await accounts.register({ email: 'bob@example.com', fullName: 'Bob', password: 'a-long-password' });
  const organizationsBefore = await db.organization.count();
  await expect(accounts.register({ email: 'bob@example.com', fullName: 'Bob 2', password: 'a-long-password' })).rejects.toMatchObject({ code: 'RESOURCE_CONFLICT', field: 'email' });
  expect(await db.organization.count()).toBe(organizationsBefore);
});

test.each([
  [{ email: 'not-an-email', fullName: '', password: 'a-long-password' }, 'email'],
  [{ email: 'c@example.com', fullName: '', password: 'short' }, 'password'],
  [{ email: 'c@example.com', fullName: 'x'.repeat(201), password: 'a-long-password' }, 'full_name'],
  [{ email: 'c@example.com', username: 'a b', fullName: '', password: 'a-long-password' }, 'username'],
])('invalid registration %j is a validation error on %s', async (input, field) => {
  const error = await accounts.register(input).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(BusError);
  expect(error).toMatchObject({ code: 'VALIDATION_ERROR', field });
});

test('login by username or email issues an EdDSA token that verifies with the published public key only', async () => {
  await accounts.register({ username: 'carol', email: 'carol@example.com', fullName: 'Carol', password: 'a-long-password' });
  for (const identifier of ['carol', 'CAROL@example.com']) {
    const result = await accounts.login(identifier, 'a-long-password');
    const [key] = await verificationKeys(db);
    const claims = createVerifier({ key: key!.publicKeyPem, algorithms: ['EdDSA'], allowedIss: 'test-issuer', allowedAud: 'test-audience' })(result.accessToken);
    expect(claims).toMatchObject({ sub: result.user.id, org: result.user.defaultOrganizationId, role: 'admin', username: 'carol' });
    expect(claims.exp - claims.iat).toBe(3600);
    expect(result.refreshToken).toMatch(/^rht_/);
  }
  const stored = await db.signingKey.findFirstOrThrow();
  expect(stored.privateKeySealed).not.toContain('PRIVATE KEY');
});

test('a wrong password and an unknown user fail the same way', async () => {
  const wrong = await accounts.login('carol', 'not-the-password').catch((e: BusError) => e);
  const unknown = await accounts.login('nobody', 'not-the-password').catch((e: BusError) => e);
  expect(wrong).toMatchObject({ code: 'AUTH_INVALID' });
  expect(unknown).toMatchObject({ code: 'AUTH_INVALID', message: (wrong as BusError).message });
});

test('the signing key survives a restart: a second issuer loads the same key', async () => {
  const again = await TokenIssuer.load(db, box, settings);
  expect(again.kid).toBe(tokens.kid);
});

test('the initial admin is created once, even when two instances race', async () => {
  const admin = { username: 'root-admin', password: 'admin-password', email: 'root@example.com' };
  const results = await Promise.all([accounts.ensureInitialAdmin(admin), accounts.ensureInitialAdmin(admin)]);
  expect(results.filter(Boolean)).toHaveLength(1);
  expect(await accounts.ensureInitialAdmin(admin)).toBe(false);
  const user = await db.user.findUniqueOrThrow({ where: { username: 'root-admin' }, include: { memberships: { include: { organization: true } } } });
  expect(user.memberships[0]).toMatchObject({ role: 'admin', organization: { shortName: 'default' } });
});

test('the current user is read once, then served from the cache until a login changes it', async () => {
  const user = await accounts.register({ email: 'dave@example.com', fullName: 'Dave', password: 'a-long-password' });
  const first = await accounts.me(user.id);
  await db.user.update({ where: { id: user.id }, data: { fullName: 'Changed behind our back' } });
  expect((await accounts.me(user.id)).fullName).toBe(first.fullName);
  await accounts.login('dave@example.com', 'a-long-password');
  expect(changed).toContain(user.id);
  expect((await accounts.me(user.id)).fullName).toBe('Changed behind our back');
});

test('an unknown or deactivated account behind a token is AUTH_INVALID', async () => {
  await expect(accounts.me('00000000-0000-0000-0000-000000000000')).rejects.toMatchObject({ code: 'AUTH_INVALID' });
});
