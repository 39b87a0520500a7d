import { request as httpRequest } from 'node:http';
import { ADMIN } from '@runnerhub/stack';
import { request, startTestStack, type JsonResponse } from './harness.js';

type TestStack = Awaited<ReturnType<typeof startTestStack>>;

/** A request from a chosen loopback address: the gateway sees it as that client's. */
function from(address: string, base: string, method: string, path: string, body?: unknown, token?: string): Promise<JsonResponse> {
  const url = new URL(path, base);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = {};
  if (payload) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method, headers, localAddress: address }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') responseHeaders.set(name, value);
        resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined, headers: responseHeaders });
      });
    });
    req.on('error', reject).end(payload);
  });
}

const login = (base: string, address: string, username: string, password = 'wrong-password') =>
  from(address, base, 'POST', '/api/auth/login', { username, password });

describe('with the documented limits lowered to 3 logins a minute', () => {
  let stack: TestStack;
  let base: string;
  let adminToken: string;

  beforeAll(async () => {
    stack = await startTestStack({ env: { RATE_LIMITS_ENABLED: 'true', RATE_LIMIT_LOGIN_PER_MINUTE: '3', RATE_LIMIT_LOGIN_PER_15_MINUTES: '20', RATE_LIMIT_USER_PER_HOUR: '50' } });
    base = stack.gatewayUrl;
    const { body } = await login(base, '127.0.0.2', ADMIN.username, ADMIN.password);
    adminToken = body.token;
  }, 120_000);

  afterAll(async () => {
    await stack?.dispose();
  }, 60_000);

  test('the fourth login for one account within a minute is a 429 RATE_LIMIT_EXCEEDED, whichever address it comes from', async () => {
    const account = `ghost-${Date.now()}`;
    const attempts = [await login(base, '127.0.0.11', account), await login(base, '127.0.0.12', account.toUpperCase()), await login(base, '127.0.0.13', account)];
    expect(attempts.map((a) => a.status)).toEqual([401, 401, 401]);
    expect(attempts.map((a) => a.headers.get('x-ratelimit-remaining'))).toEqual(['2', '1', '0']);

    const refused = await login(base, '127.0.0.14', account);
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ success: false, error: { code: 'RATE_LIMIT_EXCEEDED', message: expect.any(String), details: null, field: null }, timestamp: expect.any(String) });
    expect(refused.headers.get('x-ratelimit-limit')).toBe('3');
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    const reset = Number(refused.headers.get('x-ratelimit-reset')) - Date.now() / 1000;
    expect(reset).toBeGreaterThan(0);
    expect(reset).toBeLessThanOrEqual(61);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
  });

  test('one address gets three login attempts a minute across accounts, and another address is not affected', async () => {
    const prefix = `spray-${Date.now()}`;
    for (const n of [1, 2, 3]) expect((await login(base, '127.0.0.21', `${prefix}-${n}`)).status).toBe(401);
    expect((await login(base, '127.0.0.21', `${prefix}-4`)).status).toBe(429);
    expect((await login(base, '127.0.0.22', `${prefix}-4`)).status).toBe(401);
  });

  test('authenticated requests carry the per-user hourly limit headers', async () => {
    const first = await request(base, 'GET', '/common/me', { token: adminToken });
    const second = await request(base, 'GET', '/common/me', { token: adminToken });
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(first.headers.get('x-ratelimit-limit')).toBe('50');
    expect(Number(second.headers.get('x-ratelimit-remaining'))).toBe(Number(first.headers.get('x-ratelimit-remaining')) - 1);
    const reset = Number(first.headers.get('x-ratelimit-reset')) - Date.now() / 1000;
    expect(reset).toBeGreaterThan(3500);
    expect(reset).toBeLessThanOrEqual(3601);
  });

  test('GET /health is never limited', async () => {
    const health = await request(base, 'GET', '/health');
    expect(health.status).toBe(200);
    expect(health.headers.get('x-ratelimit-limit')).toBeNull();
  });
});

describe('with RATE_LIMITS_ENABLED=false', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ env: { RATE_LIMITS_ENABLED: 'false', RATE_LIMIT_LOGIN_PER_MINUTE: '1' } });
  }, 120_000);

  afterAll(async () => {
    await stack?.dispose();
  }, 60_000);

  test('no response carries rate limit headers and nothing is refused', async () => {
    const attempts = [];
    for (let i = 0; i < 4; i++) attempts.push(await login(stack.gatewayUrl, '127.0.0.31', 'nobody-here'));
    expect(attempts.map((a) => a.status)).toEqual([401, 401, 401, 401]);
    const { status, body, headers } = await login(stack.gatewayUrl, '127.0.0.31', ADMIN.username, ADMIN.password);
    expect(status).toBe(200);
    expect(headers.get('x-ratelimit-limit')).toBeNull();
    const me = await request(stack.gatewayUrl, 'GET', '/common/me', { token: body.token });
    expect(me.status).toBe(200);
    expect(me.headers.get('x-ratelimit-limit')).toBeNull();
  });
});
