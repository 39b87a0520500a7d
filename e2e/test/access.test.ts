import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createSigner } from 'fast-jwt';
import pg from 'pg';
import { SecretBox } from '@runnerhub/secrets';
import { ADMIN, type Stack } from '@runnerhub/stack';
import { request, startTestStack } from './harness.js';

const SECRETS_KEY = randomBytes(32).toString('base64');
let stack: Stack & { dispose(): Promise<void> };
let base: string;
const tokens: Record<'admin' | 'operator' | 'viewer' | 'foreign', string> = { admin: '', operator: '', viewer: '', foreign: '' };
const ids: Record<'operator' | 'viewer' | 'foreign', string> = { operator: '', viewer: '', foreign: '' };
let defaultOrg = '';
let foreignOrg = '';

const login = async (username: string, password: string) => {
  const { status, body } = await request(base, 'POST', '/api/auth/login', { body: { username, password } });
  expect(status).toBe(200);
  return body as { token: string; refreshToken: string; user: { id: string } };
};

beforeAll(async () => {
  stack = await startTestStack({ env: { SECRETS_KEY, SECRETS_KEY_ID: 'e2e' } });
  base = stack.gatewayUrl;
  tokens.admin = (await login(ADMIN.username, ADMIN.password)).token;
  for (const role of ['operator', 'viewer'] as const) {
    const created = await request(base, 'POST', '/api/users', { token: tokens.admin, body: { username: `${role}-user`, password: 'a-long-password', role } });
    expect(created.status).toBe(201);
    ids[role] = created.body.id;
    tokens[role] = (await login(`${role}-user`, 'a-long-password')).token;
  }
  const registered = await request(base, 'POST', '/auth/register', { body: { email: 'foreigner@example.com', full_name: 'Foreigner', password: 'a-long-password' } });
  ids.foreign = registered.body.uid;
  tokens.foreign = (await login('foreigner@example.com', 'a-long-password')).token;
  defaultOrg = (await request(base, 'GET', '/org', { token: tokens.admin })).body[0].uid;
  foreignOrg = (await request(base, 'GET', '/org', { token: tokens.foreign })).body[0].uid;
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
}, 60_000);

type Who = keyof typeof tokens | 'anonymous';

/** The error code in the dialect's own body: RustCI (/v1) names a type instead of a code. */
function errorCodeOf(path: string, body: { error: { code?: string; type?: string } }): string | undefined {
  if (!path.startsWith('/v1/')) return body.error.code;
  return { authentication_error: 'AUTH_REQUIRED', authorization_error: 'PERMISSION_DENIED', not_found: 'RESOURCE_NOT_FOUND' }[body.error.type ?? ''];
}

/** Each row: an endpoint and the status every caller must get. */
const matrix: Array<{ name: string; call: () => { method: string; path: string; body?: unknown }; expect: Record<Who, number> }> = [
  { name: 'GET /api/users', call: () => ({ method: 'GET', path: '/api/users' }), expect: { admin: 200, operator: 403, viewer: 403, foreign: 200, anonymous: 401 } },
  { name: 'POST /api/users', call: () => ({ method: 'POST', path: '/api/users', body: { username: `u${randomBytes(4).toString('hex')}`, password: 'a-long-password' } }), expect: { admin: 201, operator: 403, viewer: 403, foreign: 201, anonymous: 401 } },
  { name: 'PUT /api/users/:id (the viewer)', call: () => ({ method: 'PUT', path: `/api/users/${ids.viewer}`, body: { fullName: 'Viewer' } }), expect: { admin: 200, operator: 403, viewer: 200, foreign: 404, anonymous: 401 } },
  { name: 'PUT /api/users/:id role change', call: () => ({ method: 'PUT', path: `/api/users/${ids.viewer}`, body: { role: 'viewer' } }), expect: { admin: 200, operator: 403, viewer: 403, foreign: 404, anonymous: 401 } },
  { name: 'GET /org/{default org}', call: () => ({ method: 'GET', path: `/org/${defaultOrg}` }), expect: { admin: 200, operator: 200, viewer: 200, foreign: 404, anonymous: 401 } },
  { name: 'PUT /org/{default org}', call: () => ({ method: 'PUT', path: `/org/${defaultOrg}`, body: { name: 'Default' } }), expect: { admin: 200, operator: 403, viewer: 403, foreign: 404, anonymous: 401 } },
  { name: 'GET /org/{foreign org}', call: () => ({ method: 'GET', path: `/org/${foreignOrg}` }), expect: { admin: 404, operator: 404, viewer: 404, foreign: 200, anonymous: 401 } },
  { name: 'GET /org', call: () => ({ method: 'GET', path: '/org' }), expect: { admin: 200, operator: 200, viewer: 200, foreign: 200, anonymous: 401 } },
  { name: 'GET /common/me', call: () => ({ method: 'GET', path: '/common/me' }), expect: { admin: 200, operator: 200, viewer: 200, foreign: 200, anonymous: 401 } },
  { name: 'GET /v1/api/users/me', call: () => ({ method: 'GET', path: '/v1/api/users/me' }), expect: { admin: 200, operator: 200, viewer: 200, foreign: 200, anonymous: 401 } },
  { name: 'GET /api/security/audit-logs', call: () => ({ method: 'GET', path: '/api/security/audit-logs' }), expect: { admin: 200, operator: 403, viewer: 403, foreign: 200, anonymous: 401 } },
  // Last: it removes the operator, whose token is refused from then on.
  { name: 'DELETE /api/users/:id (the operator)', call: () => ({ method: 'DELETE', path: `/api/users/${ids.operator}` }), expect: { admin: 200, operator: 403, viewer: 403, foreign: 404, anonymous: 401 } },
];

describe('authorisation matrix', () => {
  // Within a row the admin goes last, so that a delete leaves the target in place for the others.
  const order: Who[] = ['anonymous', 'foreign', 'viewer', 'operator', 'admin'];
  for (const row of matrix) {
    test(`${row.name}: ${order.map((who) => `${who} → ${row.expect[who]}`).join(', ')}`, async () => {
      for (const who of order) {
        const { method, path, body } = row.call();
        const response = await request(base, method, path, { token: who === 'anonymous' ? undefined : tokens[who], body });
        expect({ who, status: response.status }).toEqual({ who, status: row.expect[who] });
        const code = { 401: 'AUTH_REQUIRED', 403: 'PERMISSION_DENIED', 404: 'RESOURCE_NOT_FOUND' }[row.expect[who]];
        if (code) expect(errorCodeOf(path, response.body)).toBe(code);
      }
    });
  }

  test('an admin lists only the users of their own organisation', async () => {
    const own = await request(base, 'GET', '/api/users?limit=100', { token: tokens.admin });
    const foreign = await request(base, 'GET', '/api/users?limit=100', { token: tokens.foreign });
    const ownIds = own.body.users.map((u: { id: string }) => u.id);
    expect(ownIds).toContain(ids.viewer);
    expect(ownIds).not.toContain(ids.foreign);
    expect(foreign.body.users.map((u: { id: string }) => u.id)).not.toContain(ids.viewer);
    expect(own.body.pagination).toMatchObject({ page: 1, limit: 100, total: ownIds.length });
  });
});

describe('users', () => {
  test('GET /api/users paginates and filters by role', async () => {
    const page = await request(base, 'GET', '/api/users?page=1&limit=1', { token: tokens.admin });
    expect(page.body.users).toHaveLength(1);
    expect(page.body.pagination).toMatchObject({ page: 1, limit: 1, hasNext: true, hasPrev: false });
    const viewers = await request(base, 'GET', '/api/users?role=viewer', { token: tokens.admin });
    expect(viewers.body.users.every((u: { role: string }) => u.role === 'viewer')).toBe(true);
    expect((await request(base, 'GET', '/api/users?role=king', { token: tokens.admin })).status).toBe(400);
  });

  test('the last admin of an organisation cannot be demoted', async () => {
    const me = await request(base, 'GET', '/v1/api/users/me', { token: tokens.admin });
    const demote = await request(base, 'PUT', `/api/users/${me.body.id}`, { token: tokens.admin, body: { role: 'viewer' } });
    expect(demote.status).toBe(409);
    expect(demote.body.error.code).toBe('RESOURCE_CONFLICT');
  });

  test('PUT /v1/api/users/me updates the email in the RustCI shape', async () => {
    const { status, body } = await request(base, 'PUT', '/v1/api/users/me', { token: tokens.viewer, body: { email: 'viewer@example.com' } });
    expect(status).toBe(200);
    expect(body).toMatchObject({ username: 'viewer-user', email: 'viewer@example.com', roles: ['viewer'], github_id: null, updated_at: expect.any(String) });
  });

  test('biRun registration answers an integer id', async () => {
    const { status, body } = await request(base, 'POST', '/api/auth/register', { body: { username: 'birun-user', password: 'a-long-password', email: 'birun@example.com' } });
    expect(status).toBe(200);
    expect(body).toMatchObject({ message: 'User created successfully', user: { id: expect.any(Number), username: 'birun-user', email: 'birun@example.com' } });
    const invalid = await request(base, 'POST', '/api/auth/register', { body: { username: 'x' } });
    expect(invalid.status).toBe(422);
    expect(invalid.body).toMatchObject({ status: 'error', error: expect.any(String) });
  });
});

describe('organisations (Runner Pilot)', () => {
  test('onboarding creates the first organisation and makes it the default', async () => {
    const user = await request(base, 'POST', '/auth/register', { body: { email: 'onboard@example.com', password: 'a-long-password' } });
    expect(user.status).toBe(200);
    const token = (await login('onboard@example.com', 'a-long-password')).token;
    const { status, body } = await request(base, 'POST', '/onboarding', { token, body: { organization: { name: 'Gigatech', short_name: 'GT', type: 'personal' } } });
    expect(status).toBe(200);
    expect(body.organization).toMatchObject({ name: 'Gigatech', short_name: 'GT', type: 'personal', created_at: expect.any(String), uid: expect.any(String) });
    const fresh = (await login('onboard@example.com', 'a-long-password')).token;
    const me = await request(base, 'GET', '/org/GT', { token: fresh });
    expect(me.body).toMatchObject({ name: 'Gigatech', short_name: 'GT' });
    const taken = await request(base, 'POST', '/org', { token, body: { name: 'Other', short_name: 'gt-2' } });
    expect(taken.status).toBe(200);
    const duplicate = await request(base, 'POST', '/org', { token, body: { name: 'Other', short_name: 'GT' } });
    expect(duplicate.status).toBe(409);
  });

  test('PUT /org/{short_name} renames and the member list shows it', async () => {
    const token = (await login('onboard@example.com', 'a-long-password')).token;
    const { status, body } = await request(base, 'PUT', '/org/GT', { token, body: { name: 'Gigatech Updated' } });
    expect(status).toBe(200);
    expect(body).toMatchObject({ name: 'Gigatech Updated', short_name: 'GT', type: 'personal' });
    const list = await request(base, 'GET', '/org', { token });
    expect(list.body.map((o: { name: string }) => o.name)).toContain('Gigatech Updated');
  });
});

describe('sessions and tokens', () => {
  test('a refresh token rotates, and reusing a spent one revokes the whole session', async () => {
    const first = await login(ADMIN.username, ADMIN.password);
    const second = await request(base, 'POST', '/api/auth/refresh', { body: { refreshToken: first.refreshToken } });
    expect(second.status).toBe(200);
    expect(second.body.refreshToken).not.toBe(first.refreshToken);
    expect((await request(base, 'GET', '/common/me', { token: second.body.token })).status).toBe(200);

    const reuse = await request(base, 'POST', '/api/auth/refresh', { body: { refreshToken: first.refreshToken } });
    expect(reuse.status).toBe(401);
    expect(reuse.body.error.code).toBe('AUTH_INVALID');
    const third = await request(base, 'POST', '/api/auth/refresh', { body: { refreshToken: second.body.refreshToken } });
    expect(third.status).toBe(401);
    const afterRevoke = await request(base, 'GET', '/common/me', { token: second.body.token });
    expect(afterRevoke.status).toBe(401);
  });

  test('logout revokes the access token at once', async () => {
    const session = await login(ADMIN.username, ADMIN.password);
    expect((await request(base, 'POST', '/api/auth/logout', { token: session.token })).status).toBe(200);
    const after = await request(base, 'GET', '/common/me', { token: session.token });
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe('AUTH_INVALID');
    expect((await request(base, 'POST', '/api/auth/refresh', { body: { refreshToken: session.refreshToken } })).status).toBe(401);
  });

  test('expired, foreign-signed and alg-none tokens are refused with the right codes', async () => {
    const client = new pg.Client({ connectionString: stack.postgres.url('identity') });
    await client.connect();
    const { rows } = await client.query('SELECT kid, private_key_sealed FROM signing_keys WHERE retired_at IS NULL LIMIT 1');
    await client.end();
    const key = new SecretBox('e2e', { e2e: SECRETS_KEY }).open(rows[0].private_key_sealed);
    const me = (await request(base, 'GET', '/v1/api/users/me', { token: tokens.viewer })).body;
    const claims = { sub: me.id, org: defaultOrg, role: 'viewer', username: me.username, sid: 'no-such-session' };
    const sign = (options: Record<string, unknown>) => createSigner({ algorithm: 'EdDSA', kid: rows[0].kid, iss: 'runnerhub-identity', aud: 'runnerhub', ...options })(claims);

    const expired = await request(base, 'GET', '/common/me', { token: sign({ key, expiresIn: 1000, clockTimestamp: Date.now() - 60_000 }) });
    expect(expired.status).toBe(401);
    expect(expired.body.error.code).toBe('AUTH_EXPIRED');

    const foreignKey = generateKeyPairSync('ed25519', { publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }).privateKey;
    const foreign = await request(base, 'GET', '/common/me', { token: sign({ key: foreignKey, expiresIn: 60_000 }) });
    expect(foreign.status).toBe(401);
    expect(foreign.body.error.code).toBe('AUTH_INVALID');

    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ ...claims, exp: Math.floor(Date.now() / 1000) + 60 })).toString('base64url')}.`;
    expect((await request(base, 'GET', '/common/me', { token: unsigned })).body.error.code).toBe('AUTH_INVALID');

    const valid = await request(base, 'GET', '/common/me', { token: sign({ key, expiresIn: 60_000 }) });
    expect(valid.status).toBe(200);
  });
});
