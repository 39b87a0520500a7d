import { generateKeyPairSync, randomBytes } from 'node:crypto';
import pg from 'pg';
import { ADMIN, type Stack } from '@runnerhub/stack';
import { request, startTestStack, type JsonResponse } from './harness.js';

const SECRETS_KEY = randomBytes(32).toString('base64');
const PASSWORD = 'super-secret-ssh-password-1234';
let stack: Stack & { dispose(): Promise<void> };
let base: string;
const tokens = { admin: '', viewer: '', foreign: '' };
let defaultOrg = '';
let foreignOrg = '';
/** Every response body seen, to prove that no secret ever leaves inventory. */
const seen: string[] = [];

async function call(who: keyof typeof tokens, method: string, path: string, body?: unknown): Promise<JsonResponse> {
  const response = await request(base, method, path, { token: tokens[who], body });
  seen.push(JSON.stringify(response.body));
  return response;
}

const login = async (username: string, password: string) =>
  (await request(base, 'POST', '/api/auth/login', { body: { username, password } })).body.token as string;

beforeAll(async () => {
  stack = await startTestStack({ env: { SECRETS_KEY, SECRETS_KEY_ID: 'e2e' } });
  base = stack.gatewayUrl;
  tokens.admin = await login(ADMIN.username, ADMIN.password);
  expect((await call('admin', 'POST', '/api/users', { username: 'server-viewer', password: 'a-long-password', role: 'viewer' })).status).toBe(201);
  tokens.viewer = await login('server-viewer', 'a-long-password');
  await request(base, 'POST', '/auth/register', { body: { email: 'outsider@example.com', full_name: 'Outsider', password: 'a-long-password' } });
  tokens.foreign = await login('outsider@example.com', 'a-long-password');
  defaultOrg = (await call('admin', 'GET', '/org')).body[0].uid;
  foreignOrg = (await call('foreign', 'GET', '/org')).body[0].uid;
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
}, 60_000);

async function createBirunServer(name: string, extra: Record<string, unknown> = {}) {
  const created = await call('admin', 'POST', '/api/servers/', { name, hostname: '127.0.0.1', username: 'deploy', port: 2222, auth_type: 'password', password: PASSWORD, ...extra });
  expect(created.status).toBe(201);
  return created.body as { id: number; uid: string };
}

describe('one server record, three dialects', () => {
  test('a server created through biRun is a NewRemora server and a Runner Pilot node of the same organisation', async () => {
    const server = await createBirunServer('web-1', { description: 'front end', tags: ['web'] });
    expect(server).toMatchObject({ id: expect.any(Number), name: 'web-1', hostname: '127.0.0.1', username: 'deploy', port: 2222, auth_type: 'password', description: 'front end', tags: ['web'], health_status: 'unknown', last_health_check: null });

    const remora = await call('admin', 'GET', `/api/v1/servers/${server.uid}`);
    expect(remora.status).toBe(200);
    expect(remora.body).toMatchObject({ success: true, error: null, timestamp: expect.any(String) });
    expect(remora.body.data).toMatchObject({ id: server.uid, name: 'web-1', hostname: '127.0.0.1', port: 2222, user: 'deploy', auth_type: 'password', is_active: true, created_at: expect.any(String), updated_at: expect.any(String) });

    const node = await call('admin', 'GET', `/org/${defaultOrg}/nodes/${server.uid}`);
    expect(node.status).toBe(200);
    expect(node.body).toEqual({ uid: server.uid, name: 'web-1', type: 'Remote', ip_address: '127.0.0.1', port: 2222, status: 'active', max_sessions: null, created_at: expect.any(String) });
    expect((await call('admin', 'GET', `/org/${defaultOrg}/nodes`)).body.map((n: { uid: string }) => n.uid)).toContain(server.uid);
    expect((await call('admin', 'GET', '/api/v1/servers')).body.data.servers.map((s: { id: string }) => s.id)).toContain(server.uid);
  });

  test('a change through one dialect is seen through the others', async () => {
    const server = await createBirunServer('web-2');
    const updated = await call('admin', 'PUT', `/org/${defaultOrg}/nodes/${server.uid}`, { name: 'web-2-renamed', status: 'inactive' });
    expect(updated.body).toMatchObject({ uid: server.uid, name: 'web-2-renamed', status: 'inactive' });

    const remora = await call('admin', 'GET', `/api/v1/servers/${server.uid}`);
    expect(remora.body.data).toMatchObject({ name: 'web-2-renamed', is_active: false });
    const active = await call('admin', 'GET', '/api/v1/servers?active_only=true');
    expect(active.body.data.servers.map((s: { id: string }) => s.id)).not.toContain(server.uid);

    const renamed = await call('admin', 'PUT', `/api/v1/servers/${server.uid}`, { port: 2200, is_active: true });
    expect(renamed.body.data).toMatchObject({ port: 2200, is_active: true });
    expect((await call('admin', 'GET', `/api/servers/${server.id}`)).body).toMatchObject({ id: server.id, name: 'web-2-renamed', port: 2200 });
  });

  test('a Socket node made through Runner Pilot needs no address and is listed by biRun', async () => {
    const node = await call('admin', 'POST', `/org/${defaultOrg}/nodes`, { name: 'agent-1', type: 'Socket' });
    expect(node.status).toBe(200);
    expect(node.body).toMatchObject({ name: 'agent-1', type: 'Socket', ip_address: null, status: 'active' });
    const listed = await call('admin', 'GET', '/api/servers/?search=agent-1');
    expect(listed.body.servers).toEqual([expect.objectContaining({ uid: node.body.uid, name: 'agent-1', auth_type: null })]);
  });

  test('a delete through NewRemora (force) removes the server from every dialect', async () => {
    const server = await createBirunServer('doomed');
    const deleted = await call('admin', 'DELETE', `/api/v1/servers/${server.uid}?force=true`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ success: true, error: null });
    expect((await call('admin', 'GET', `/api/servers/${server.id}`)).status).toBe(404);
    expect((await call('admin', 'GET', `/org/${defaultOrg}/nodes/${server.uid}`)).status).toBe(404);
    expect((await call('admin', 'DELETE', `/api/v1/servers/${server.uid}`)).status).toBe(404);
  });
});

describe('secrets', () => {
  test('a password is stored sealed and every response shows it masked', async () => {
    const server = await createBirunServer('sealed-1');
    expect(server).toMatchObject({ masked_credential: '****1234' });
    const db = new pg.Client({ connectionString: stack.postgres.url('inventory') });
    await db.connect();
    try {
      const { rows } = await db.query('SELECT sealed_credential FROM servers WHERE id = $1', [server.uid]);
      expect(rows[0].sealed_credential).toMatch(/^v1:e2e:/);
      expect(rows[0].sealed_credential).not.toContain(PASSWORD);
    } finally {
      await db.end();
    }
  });

  test('a private key is accepted only when it parses as one, and is never returned', async () => {
    const { privateKey } = generateKeyPairSync('ed25519', { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const created = await call('admin', 'POST', '/api/v1/servers', { name: 'keyed-1', hostname: '127.0.0.1', user: 'deploy', auth_type: 'key', private_key: privateKey });
    expect(created.status).toBe(201);
    expect(created.body.data).toMatchObject({ auth_type: 'key', masked_credential: expect.stringMatching(/^\*\*\*\*.{4}$/) });
    expect(JSON.stringify(created.body)).not.toContain('PRIVATE KEY');

    const refused = await call('admin', 'POST', '/api/v1/servers', { name: 'keyed-2', hostname: '127.0.0.1', user: 'deploy', auth_type: 'key', private_key: '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----' });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ success: false, data: null, error: expect.stringContaining('private_key'), request_id: expect.any(String) });
  });
});

describe('authorisation', () => {
  test("another organisation's server answers 404 in every dialect", async () => {
    const server = await createBirunServer('private-1');
    expect((await call('foreign', 'GET', `/api/servers/${server.id}`)).status).toBe(404);
    expect((await call('foreign', 'PUT', `/api/servers/${server.id}`, { name: 'stolen' })).status).toBe(404);
    expect((await call('foreign', 'DELETE', `/api/servers/${server.id}`)).status).toBe(404);
    const remora = await call('foreign', 'GET', `/api/v1/servers/${server.uid}`);
    expect(remora.status).toBe(404);
    expect(remora.body).toMatchObject({ success: false, data: null });
    expect((await call('foreign', 'GET', `/org/${foreignOrg}/nodes/${server.uid}`)).status).toBe(404);
    const foreignPath = await call('foreign', 'GET', `/org/${defaultOrg}/nodes/${server.uid}`);
    expect(foreignPath.status).toBe(404);
    expect(foreignPath.body.error.code).toBe('RESOURCE_NOT_FOUND');
    expect((await call('foreign', 'GET', '/api/servers/')).body).toMatchObject({ servers: [], total: 0 });
    expect((await call('admin', 'GET', `/api/servers/${server.id}`)).status).toBe(200);
  });

  test('a viewer reads servers but cannot create, change or delete them (403)', async () => {
    const server = await createBirunServer('guarded-1');
    expect((await call('viewer', 'GET', `/api/servers/${server.id}`)).status).toBe(200);
    const create = await call('viewer', 'POST', '/api/servers/', { name: 'nope', hostname: '127.0.0.1', username: 'u', auth_type: 'password', password: 'x-password' });
    expect(create.status).toBe(403);
    expect(create.body).toMatchObject({ status: 'error', details: { code: 'PERMISSION_DENIED' } });
    expect((await call('viewer', 'POST', '/api/v1/servers', { name: 'nope', hostname: '127.0.0.1', user: 'u', auth_type: 'password', password: 'x-password' })).status).toBe(403);
    expect((await call('viewer', 'PUT', `/org/${defaultOrg}/nodes/${server.uid}`, { name: 'nope' })).status).toBe(403);
    expect((await call('viewer', 'DELETE', `/api/servers/${server.id}`)).status).toBe(403);
  });

  test('without a token every server route answers 401', async () => {
    expect((await request(base, 'GET', '/api/servers/')).status).toBe(401);
    expect((await request(base, 'GET', '/api/v1/servers')).status).toBe(401);
    expect((await request(base, 'GET', `/org/${defaultOrg}/nodes`)).status).toBe(401);
  });
});

describe('bad input', () => {
  test('biRun answers 422 in its own error format', async () => {
    const missing = await call('admin', 'POST', '/api/servers/', { name: 'no-host', username: 'u', auth_type: 'password', password: 'x-password' });
    expect(missing.status).toBe(422);
    expect(missing.body).toMatchObject({ error: expect.any(String), status: 'error', details: { code: 'VALIDATION_ERROR', field: 'hostname' } });
    expect((await call('admin', 'GET', '/api/servers/abc')).status).toBe(422);
    expect((await call('admin', 'POST', '/api/servers/', { name: 'no-secret', hostname: '127.0.0.1', username: 'u', auth_type: 'password' })).body).toMatchObject({ status: 'error', details: { field: 'password' } });
  });

  test('NewRemora answers 400 in its own error format', async () => {
    const noPassword = await call('admin', 'POST', '/api/v1/servers', { name: 'x', hostname: '127.0.0.1', user: 'u', auth_type: 'password' });
    expect(noPassword.status).toBe(400);
    expect(noPassword.body).toMatchObject({ success: false, data: null, error: expect.any(String), request_id: expect.any(String), timestamp: expect.any(String) });
    expect((await call('admin', 'GET', '/api/v1/servers/not-a-uuid')).status).toBe(400);
    expect((await call('admin', 'POST', '/api/v1/servers', { name: 'x', hostname: 'bad host!', user: 'u', auth_type: 'password', password: 'pw-123456' })).status).toBe(400);
  });

  test("Runner Pilot answers 400 in RunnerHub's error format", async () => {
    const badType = await call('admin', 'POST', `/org/${defaultOrg}/nodes`, { name: 'n', type: 'Satellite' });
    expect(badType.status).toBe(400);
    expect(badType.body).toMatchObject({ success: false, error: { code: 'VALIDATION_ERROR' } });
    const noAddress = await call('admin', 'POST', `/org/${defaultOrg}/nodes`, { name: 'n', type: 'Remote' });
    expect(noAddress.status).toBe(400);
    expect(noAddress.body.error).toMatchObject({ code: 'VALIDATION_ERROR', field: 'hostname' });
  });

  test('a second server with the same name in one organisation is a conflict (409)', async () => {
    await createBirunServer('twin');
    const again = await call('admin', 'POST', '/api/v1/servers', { name: 'twin', hostname: '127.0.0.1', user: 'u', auth_type: 'password', password: 'pw-123456' });
    expect(again.status).toBe(409);
  });
});

describe("biRun's lists and groups", () => {
  test('the server list pages and searches by name or hostname', async () => {
    for (const n of [1, 2, 3]) await createBirunServer(`paged-${n}`, { hostname: n === 3 ? 'localhost' : '127.0.0.1' });
    const first = await call('admin', 'GET', '/api/servers/?search=paged-&limit=2&page=1');
    expect(first.body).toMatchObject({ total: 3, page: 1, pages: 2 });
    expect(first.body.servers.map((s: { name: string }) => s.name)).toEqual(['paged-1', 'paged-2']);
    const second = await call('admin', 'GET', '/api/servers/?search=PAGED-&limit=2&page=2');
    expect(second.body.servers.map((s: { name: string }) => s.name)).toEqual(['paged-3']);
    const byHost = await call('admin', 'GET', '/api/servers/?search=localhost');
    expect(byHost.body.servers.map((s: { name: string }) => s.name)).toEqual(['paged-3']);
    expect((await call('admin', 'GET', '/api/servers/')).body.servers.length).toBeLessThanOrEqual(10);
  });

  test('a server group holds servers by their biRun ids and refuses unknown ones', async () => {
    const a = await createBirunServer('grouped-a');
    const b = await createBirunServer('grouped-b');
    const group = await call('admin', 'POST', '/api/server-groups/', { name: 'web tier', description: 'all web', server_ids: [a.id, b.id] });
    expect(group.status).toBe(201);
    expect(group.body).toMatchObject({ id: expect.any(Number), name: 'web tier', description: 'all web', server_ids: [a.id, b.id] });

    const updated = await call('admin', 'PUT', `/api/server-groups/${group.body.id}`, { server_ids: [b.id] });
    expect(updated.body.server_ids).toEqual([b.id]);
    expect((await call('admin', 'GET', '/api/server-groups/')).body.groups.map((g: { id: number }) => g.id)).toContain(group.body.id);
    const unknown = await call('admin', 'PUT', `/api/server-groups/${group.body.id}`, { server_ids: [999_999] });
    expect(unknown.status).toBe(422);
    expect(unknown.body.details.field).toBe('server_ids');

    expect((await call('foreign', 'GET', `/api/server-groups/${group.body.id}`)).status).toBe(404);
    expect((await call('viewer', 'DELETE', `/api/server-groups/${group.body.id}`)).status).toBe(403);
    expect((await call('admin', 'DELETE', `/api/server-groups/${group.body.id}`)).status).toBe(200);
    expect((await call('admin', 'GET', `/api/server-groups/${group.body.id}`)).status).toBe(404);
    expect((await call('admin', 'GET', `/api/servers/${b.id}`)).status).toBe(200);
  });
});

// Last: by now every dialect has answered with servers that hold the password.
test('no response of this suite carried the SSH password', () => {
  expect(seen.length).toBeGreaterThan(50);
  for (const body of seen) expect(body).not.toContain(PASSWORD);
});
