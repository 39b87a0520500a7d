import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createVerifier } from 'fast-jwt';
import { deployMigrations } from '@runnerhub/db-migrate';
import { startFakeGithub, type FakeGithub } from '@runnerhub/fake-github';
import { startThrowawayPostgres, type ThrowawayPostgres } from '@runnerhub/infra';
import { SecretBox } from '@runnerhub/secrets';
import { createDatabase, type IdentityDb } from '../src/adapters/database.js';
import { GithubHttp, type GithubHttpOptions } from '../src/adapters/github.js';
import { Accounts } from '../src/domain/accounts.js';
import { GithubSignIn, OAuthStates, stateKey } from '../src/domain/github-oauth.js';
import { PasswordHasher } from '../src/domain/passwords.js';
import { ProfileCache } from '../src/domain/profile-cache.js';
import { Sessions } from '../src/domain/sessions.js';
import { TokenIssuer, verificationKeys } from '../src/domain/tokens.js';

const settings = { issuer: 'test-issuer', audience: 'test-audience', accessTtlSeconds: 3600, refreshTtlSeconds: 86_400 };
const states = new OAuthStates(stateKey(randomBytes(32).toString('base64')));
let postgres: ThrowawayPostgres;
let db: IdentityDb;
let pool: { end(): Promise<void> };
let accounts: Accounts;
let github: FakeGithub;

beforeAll(async () => {
  github = await startFakeGithub({
    users: [
      { login: 'ada', id: 101, name: 'Ada Lovelace', email: 'ada@example.com' },
      { login: 'gracehopper', id: 102, name: 'Grace Hopper', emails: [{ email: 'Grace@Example.com', primary: true, verified: true }] },
      { login: 'linus', id: 103, emails: [{ email: 'linus@example.com', primary: true, verified: false }] },
      { login: 'margaret', id: 104, emails: [] },
      { login: 'barbara', id: 105, emails: [{ email: 'barbara@example.com', primary: true, verified: true }] },
      { login: 'mallory', id: 106, emails: [{ email: 'barbara@example.com', primary: true, verified: true }] },
    ],
  });
  postgres = await startThrowawayPostgres();
  const url = await postgres.freshDatabase('identity');
  await deployMigrations({ schemaPath: join(new URL('.', import.meta.url).pathname, '../prisma/schema.prisma'), databaseUrl: url });
  ({ db, pool } = createDatabase({ url, poolSize: 5, timeoutMs: 5_000 }));
  const sessions = new Sessions(db, await TokenIssuer.load(db, new SecretBox('k1', { k1: randomBytes(32).toString('base64') }), settings), { revoked: () => {} });
  accounts = new Accounts(db, new PasswordHasher({ memoryCost: 4096, timeCost: 1, parallelism: 1 }, 8), sessions, new ProfileCache(60_000), () => {});
}, 60_000);

afterAll(async () => {
  await db?.$disconnect();
  await pool?.end();
  await postgres?.dispose();
  await github?.close();
});

beforeEach(() => {
  github.setDown(false);
  github.setLatency(0);
});

function client(overrides: Partial<GithubHttpOptions> = {}): GithubHttp {
  return new GithubHttp({ apiUrl: github.apiUrl, webUrl: github.webUrl, clientId: github.clientId, clientSecret: github.clientSecret, timeoutMs: 5_000, resetMs: 30_000, ...overrides });
}

function signInWith(http: GithubHttp): GithubSignIn {
  return new GithubSignIn(db, accounts, { github: http, clientId: github.clientId, webUrl: github.webUrl, callbackUrl: undefined, states });
}

const signIn = () => signInWith(client());
const signInAs = (login: string, via = signIn()) => via.callback(github.issueCode(login), states.sign(undefined));
const requestsTo = (path: string) => github.requests.filter((r) => r.path === path).length;

test('a first GitHub sign-in creates a user with the github_id, the login as username, a personal organisation and no password', async () => {
  const result = await signInAs('ada');
  expect(result.user).toMatchObject({ username: 'ada', email: 'ada@example.com', fullName: 'Ada Lovelace', githubId: 101n, passwordHash: null });
  expect(result.user.memberships).toEqual([expect.objectContaining({ role: 'admin', organization: expect.objectContaining({ type: 'personal', name: 'Ada Lovelace' }) })]);
  expect(result.refreshToken).toMatch(/^rht_/);
  const [key] = await verificationKeys(db);
  const claims = createVerifier({ key: key!.publicKeyPem, algorithms: ['EdDSA'], allowedIss: 'test-issuer', allowedAud: 'test-audience' })(result.accessToken);
  expect(claims).toMatchObject({ sub: result.user.id, username: 'ada', role: 'admin', org: result.user.defaultOrganizationId });
});

test('signing in again with the same GitHub account signs in to the same user, without reading /user/emails', async () => {
  const first = await db.user.findUniqueOrThrow({ where: { githubId: 101n } });
  const emailReads = requestsTo('/user/emails');
  const again = await signInAs('ada');
  expect(again.user.id).toBe(first.id);
  expect(requestsTo('/user/emails')).toBe(emailReads);
  expect(await db.organization.count({ where: { memberships: { some: { userId: first.id } } } })).toBe(1);
});

test('an existing password account with the same email is not taken over by a GitHub sign-in', async () => {
  const registered = await accounts.register({ email: 'grace@example.com', fullName: 'Grace', password: 'a-long-password' });
  await expect(signInAs('gracehopper')).rejects.toMatchObject({ code: 'RESOURCE_CONFLICT' });
  const unchanged = await accounts.login('grace@example.com', 'a-long-password');
  expect(unchanged.user).toMatchObject({ id: registered.id, githubId: null });
});

test('an unverified GitHub email links nothing: a new account without an email is created', async () => {
  const registered = await accounts.register({ email: 'linus@example.com', fullName: 'Linus', password: 'a-long-password' });
  const result = await signInAs('linus');
  expect(result.user.id).not.toBe(registered.id);
  expect(result.user).toMatchObject({ username: 'linus', email: null, githubId: 103n });
});

test('a taken username gets the next free number', async () => {
  await accounts.register({ username: 'margaret', email: 'margaret@corp.example', fullName: '', password: 'a-long-password' });
  expect((await signInAs('margaret')).user.username).toBe('margaret-2');
});

test('an account already linked to another GitHub account is not taken over through its email', async () => {
  await signInAs('barbara');
  await expect(signInAs('mallory')).rejects.toMatchObject({ code: 'RESOURCE_CONFLICT' });
  expect(await db.user.count({ where: { githubId: 106n } })).toBe(0);
});

test('two first sign-ins of one GitHub account at once end in one user', async () => {
  await db.user.deleteMany({ where: { githubId: 101n } });
  const [a, b] = await Promise.all([signInAs('ada'), signInAs('ada')]);
  expect(a.user.id).toBe(b.user.id);
  expect(await db.user.count({ where: { githubId: 101n } })).toBe(1);
});

test('a code works once: using it again is AUTH_INVALID', async () => {
  const code = github.issueCode('ada');
  await signIn().callback(code, states.sign(undefined));
  await expect(signIn().callback(code, states.sign(undefined))).rejects.toMatchObject({ code: 'AUTH_INVALID' });
});

test('GitHub refusing the client secret is SERVICE_UNAVAILABLE naming the misconfiguration', async () => {
  await expect(signInAs('ada', signInWith(client({ clientSecret: 'wrong' })))).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE', message: expect.stringContaining('misconfigured') });
});

test('a GitHub slower than the timeout is SERVICE_UNAVAILABLE once the timeout passes', async () => {
  github.setLatency(2_000);
  const started = Date.now();
  await expect(signInAs('ada', signInWith(client({ timeoutMs: 200 })))).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE', message: 'GitHub did not answer within 200 ms' });
  expect(Date.now() - started).toBeLessThan(1_500);
});

test('GitHub down: after repeated failures the circuit opens and sign-ins fail fast without calling GitHub, until it recovers', async () => {
  const opened: string[] = [];
  const flaky = signInWith(client({ resetMs: 500, onCircuit: (state) => opened.push(state) }));
  github.setDown(true);
  for (let i = 0; i < 5; i += 1) {
    await expect(signInAs('ada', flaky)).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE', message: 'GitHub answered 503' });
  }
  expect(opened).toEqual(['open']);

  const seen = github.requests.length;
  const started = Date.now();
  await expect(signInAs('ada', flaky)).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE', message: expect.stringContaining('paused') });
  expect(Date.now() - started).toBeLessThan(100);
  expect(github.requests.length).toBe(seen);

  github.setDown(false);
  await new Promise((resolve) => setTimeout(resolve, 600));
  expect((await signInAs('ada', flaky)).user.githubId).toBe(101n);
  expect(opened).toEqual(['open', 'halfOpen', 'close']);
});
