import { ADMIN, type Stack } from '@runnerhub/stack';
import { request, startTestStack } from './harness.js';

let stack: Stack & { dispose(): Promise<void> };
let base: string;

beforeAll(async () => {
  stack = await startTestStack();
  base = stack.gatewayUrl;
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
}, 60_000);

describe('GET /health', () => {
  test('reports every discovered service and dependency healthy, with the RunnerHub and NewRemora fields', async () => {
    const { status, body } = await request(base, 'GET', '/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      status: 'healthy',
      version: expect.any(String),
      uptime: expect.any(Number),
      database: 'connected',
      queue: 'connected',
      services: { database: 'healthy', redis: 'healthy', nats: 'healthy', identity: 'healthy', inventory: 'healthy', scheduler: 'healthy', executor: 'healthy', 'github-sync': 'healthy', metrics: 'healthy' },
    });
    expect(new Date(body.timestamp).getTime()).toBeGreaterThan(Date.now() - 60_000);
  });
});

describe('GET /v1/health', () => {
  test("answers RustCI's fields with the uptime written out, without a token", async () => {
    const { status, body } = await request(base, 'GET', '/v1/health');
    expect(status).toBe(200);
    expect(body).toEqual({ status: 'healthy', timestamp: expect.any(String), version: expect.any(String), uptime: expect.stringMatching(/^\d+h \d+m \d+s$/) });
  });
});

describe('Runner Pilot accounts', () => {
  const email = `jane.${Date.now()}@example.com`;

  test('POST /auth/register creates the user and answers the documented fields', async () => {
    const { status, body } = await request(base, 'POST', '/auth/register', { body: { full_name: 'Jane Doe', email, password: 'correct horse battery' } });
    expect(status).toBe(200);
    expect(body).toEqual({ uid: expect.stringMatching(/^[0-9a-f-]{36}$/), full_name: 'Jane Doe', email, created_at: expect.any(String) });
  });

  test('registering the same email twice is a 409 RESOURCE_CONFLICT in the RunnerHub error format', async () => {
    const { status, body } = await request(base, 'POST', '/auth/register', { body: { full_name: 'Jane Again', email, password: 'correct horse battery' } });
    expect(status).toBe(409);
    expect(body).toMatchObject({ success: false, error: { code: 'RESOURCE_CONFLICT', field: 'email' }, timestamp: expect.any(String) });
  });

  test('POST /auth/login by email returns a bearer token that GET /common/me accepts', async () => {
    const login = await request(base, 'POST', '/auth/login', { body: { email, password: 'correct horse battery' } });
    expect(login.status).toBe(200);
    expect(login.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600 });

    const me = await request(base, 'GET', '/common/me', { token: login.body.access_token });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ full_name: 'Jane Doe', email, uid: expect.any(String), created_at: expect.any(String) });
    expect(me.body.organizations).toHaveLength(1);
    expect(me.body.organizations[0]).toMatchObject({ short_name: expect.any(String), name: 'Jane Doe' });
  });

  test('a short password is a 400 VALIDATION_ERROR naming the field, and nothing is stored', async () => {
    const other = `short.${Date.now()}@example.com`;
    const { status, body } = await request(base, 'POST', '/auth/register', { body: { email: other, password: 'short' } });
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ code: 'VALIDATION_ERROR', field: 'password' });
    const login = await request(base, 'POST', '/auth/login', { body: { email: other, password: 'short' } });
    expect(login.status).toBe(401);
  });

  test('bad bodies are 400s in the dialect format, never 500s', async () => {
    const cases: Array<{ body: unknown; headers?: Record<string, string> }> = [
      { body: { email: 'a@b.co' } },
      { body: { email: 42, password: ['x'] } },
      { body: '{"email": "broken json' },
      { body: 'a'.repeat(2_000_000) },
      { body: { email: '\u{1F600}@\u{1F600}.\u{1F600}', password: 'ünïcødé-password' } },
    ];
    for (const c of cases) {
      const { status, body } = await request(base, 'POST', '/auth/register', c);
      expect([400, 413]).toContain(status);
      expect(body).toMatchObject({ success: false, error: { code: 'VALIDATION_ERROR' } });
    }
  });
});

describe('RunnerHub and biRun login', () => {
  test('POST /api/auth/login answers the union of both documents for the initial admin', async () => {
    const { status, body } = await request(base, 'POST', '/api/auth/login', { body: { username: ADMIN.username, password: ADMIN.password } });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      token: expect.any(String),
      refreshToken: expect.any(String),
      expiresIn: 3600,
      access_token: body.token,
      token_type: 'bearer',
      user: { id: expect.any(String), number: expect.any(Number), username: 'admin', email: ADMIN.email, role: 'admin', permissions: ['read', 'write', 'admin'] },
    });
  });

  test('a wrong password and an unknown user get the same 401 AUTH_INVALID', async () => {
    const wrong = await request(base, 'POST', '/api/auth/login', { body: { username: ADMIN.username, password: 'wrong-password' } });
    const unknown = await request(base, 'POST', '/api/auth/login', { body: { username: 'nobody-here', password: 'wrong-password' } });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.body.error).toEqual(unknown.body.error);
    expect(wrong.body.error.code).toBe('AUTH_INVALID');
  });
});

describe('bearer tokens', () => {
  test('a missing token is AUTH_REQUIRED and a tampered one AUTH_INVALID', async () => {
    const missing = await request(base, 'GET', '/common/me');
    expect(missing.status).toBe(401);
    expect(missing.body.error.code).toBe('AUTH_REQUIRED');

    const { body } = await request(base, 'POST', '/api/auth/login', { body: { username: ADMIN.username, password: ADMIN.password } });
    const [header, payload, signature] = (body.token as string).split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, role: 'superuser' })).toString('base64url')}.${signature}`;
    const tampered = await request(base, 'GET', '/common/me', { token: forged });
    expect(tampered.status).toBe(401);
    expect(tampered.body.error.code).toBe('AUTH_INVALID');
  });

  test('the token is signed with EdDSA by identity, not a shared secret', async () => {
    const { body } = await request(base, 'POST', '/api/auth/login', { body: { username: ADMIN.username, password: ADMIN.password } });
    const header = JSON.parse(Buffer.from((body.token as string).split('.')[0]!, 'base64url').toString());
    expect(header).toMatchObject({ alg: 'EdDSA', kid: expect.any(String) });
  });
});

describe('errors and metrics', () => {
  test('an unknown route answers 404 in the error format of the document its path belongs to', async () => {
    const remora = await request(base, 'GET', '/api/v1/nothing-here');
    expect(remora.status).toBe(404);
    expect(remora.body).toMatchObject({ success: false, data: null, error: expect.any(String), request_id: expect.any(String) });
    const rustci = await request(base, 'GET', '/v1/nothing-here');
    expect(rustci.body).toMatchObject({ error: { type: 'not_found', message: expect.any(String), correlation_id: expect.any(String) } });
  });

  test('the gateway exposes HTTP and bus metrics with its service label', async () => {
    await request(base, 'GET', '/health');
    const text = await fetch(`${base}/metrics`).then((r) => r.text());
    expect(text).toMatch(/runnerhub_http_requests_total\{[^}]*route="\/health"[^}]*\} \d+/);
    expect(text).toMatch(/runnerhub_bus_requests_total\{[^}]*subject="identity.v1.health.check"/);
    expect(text).toContain('service="gateway"');
    expect(text).toContain('process_resident_memory_bytes');
  });
});
