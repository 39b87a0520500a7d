import { ADMIN, type Stack } from '@runnerhub/stack';
import { request, startTestStack } from './harness.js';

let stack: Stack & { dispose(): Promise<void> };
let base: string;
let token: string;

beforeAll(async () => {
  stack = await startTestStack({ env: { RATE_LIMITS_ENABLED: 'false' } });
  base = stack.gatewayUrl;
  token = (await request(base, 'POST', '/api/auth/login', { body: { username: ADMIN.username, password: ADMIN.password } })).body.token;
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
}, 60_000);

/** Every endpoint that takes a body, with the error shape of its dialect. */
const endpoints: Array<{ method: string; path: string; dialect: 'runnerhub' | 'birun' | 'rustci'; auth: boolean }> = [
  { method: 'POST', path: '/api/auth/login', dialect: 'runnerhub', auth: false },
  { method: 'POST', path: '/api/auth/refresh', dialect: 'runnerhub', auth: false },
  { method: 'POST', path: '/api/auth/register', dialect: 'birun', auth: false },
  { method: 'POST', path: '/auth/register', dialect: 'runnerhub', auth: false },
  { method: 'POST', path: '/auth/login', dialect: 'runnerhub', auth: false },
  { method: 'POST', path: '/onboarding', dialect: 'runnerhub', auth: true },
  { method: 'POST', path: '/org', dialect: 'runnerhub', auth: true },
  { method: 'PUT', path: '/org/default', dialect: 'runnerhub', auth: true },
  { method: 'POST', path: '/api/users', dialect: 'runnerhub', auth: true },
  { method: 'PUT', path: '/api/users/00000000-0000-0000-0000-000000000000', dialect: 'runnerhub', auth: true },
  { method: 'PUT', path: '/v1/api/users/me', dialect: 'rustci', auth: true },
];

const badBodies: Array<[string, string]> = [
  ['an empty object', '{}'],
  ['wrong types', JSON.stringify({ username: 42, password: ['x'], email: { a: 1 }, name: true, short_name: null, organization: 'x', refreshToken: 7, role: 3, full_name: 9 })],
  ['broken JSON', '{"username": "a", '],
  ['a JSON array', '[1, 2, 3]'],
  ['unicode garbage', JSON.stringify({ username: '\u0000\u{1F4A9}\uFFFF', password: '\uD800', email: '\u202E@\u202E', name: '\u0000', short_name: '\u{1F4A9}', organization: { name: '', short_name: '\u0000' }, role: 'ádmin' })],
  ['a huge body', JSON.stringify({ username: 'a'.repeat(3_000_000) })],
];

function expectDialectError(dialect: string, body: Record<string, any>): void {
  if (dialect === 'rustci') expect(body.error).toMatchObject({ type: expect.any(String), message: expect.any(String) });
  else if (dialect === 'birun') expect(body).toMatchObject({ status: 'error', error: expect.any(String) });
  else expect(body).toMatchObject({ success: false, error: { code: expect.any(String), message: expect.any(String) } });
}

describe.each(endpoints)('$method $path', (endpoint) => {
  test.each(badBodies)('%s is a 4xx in the dialect error format', async (_name, raw) => {
    const response = await request(base, endpoint.method, endpoint.path, { body: raw, token: endpoint.auth ? token : undefined });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expectDialectError(endpoint.dialect, response.body);
  });
});

test('nothing is stored by refused requests', async () => {
  const before = (await request(base, 'GET', '/api/users', { token })).body.pagination.total;
  const organizationsBefore = (await request(base, 'GET', '/org', { token })).body.length;
  for (const [, raw] of badBodies) {
    await request(base, 'POST', '/api/users', { body: raw, token });
    await request(base, 'POST', '/org', { body: raw, token });
  }
  expect((await request(base, 'GET', '/api/users', { token })).body.pagination.total).toBe(before);
  expect((await request(base, 'GET', '/org', { token })).body.length).toBe(organizationsBefore);
});

test('a wrong content type is a 415 in the dialect format', async () => {
  const response = await request(base, 'POST', '/api/auth/login', { body: 'username=admin', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  expect(response.status).toBe(415);
  expectDialectError('runnerhub', response.body);
});
