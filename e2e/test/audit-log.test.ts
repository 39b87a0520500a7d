import { ADMIN, type Stack } from '@runnerhub/stack';
import { eventually, request, startOtlpReceiver, startTestStack, type OtlpReceiver } from './harness.js';

const AUDIT = '/api/security/audit-logs';
const incomingTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
const suffix = Date.now();
const newcomer = { full_name: 'New Comer', email: `newcomer.${suffix}@example.com`, password: 'newcomer-password-SECRET-1' };
const viewer = { username: `viewer-${suffix}`, password: 'viewer-password-SECRET-2', role: 'viewer' };
const wrongPassword = 'wrong-password-SECRET-3';

let stack: Stack & { dispose(): Promise<void> };
let receiver: OtlpReceiver;
let base: string;
let adminToken: string;

type Log = { id: string; timestamp: string; actor: { id: string | null; username: string | null }; organizationId: string | null; action: string; target: string; outcome: string; statusCode: number; clientAddress: string; traceId: string | null; requestId: string };

/** The admin's view of the audit log once it holds what `ready` waits for (records are stored asynchronously). */
async function auditLogs(query: string, ready: (logs: Log[]) => boolean): Promise<{ logs: Log[]; pagination: Record<string, unknown> }> {
  return eventually(`audit logs for ${query}`, async () => {
    const response = await request(base, 'GET', `${AUDIT}?${query}`, { token: adminToken });
    expect(response.status).toBe(200);
    return ready(response.body.logs) ? response.body : undefined;
  }, 20_000);
}

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  stack = await startTestStack({ services: ['identity', 'gateway'], env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } });
  base = stack.gatewayUrl;

  const login = await request(base, 'POST', '/api/auth/login', { body: { username: ADMIN.username, password: ADMIN.password }, headers: { traceparent: `00-${incomingTrace}-00f067aa0ba902b7-01`, 'x-request-id': `admin-login-${suffix}` } });
  expect(login.status).toBe(200);
  adminToken = login.body.token;
  expect((await request(base, 'POST', '/api/auth/login', { body: { username: ADMIN.username, password: wrongPassword }, headers: { 'x-request-id': `failed-login-${suffix}` } })).status).toBe(401);
  expect((await request(base, 'POST', '/auth/register', { body: newcomer, headers: { 'x-request-id': `register-${suffix}` } })).status).toBe(200);
  expect((await request(base, 'POST', '/api/users', { token: adminToken, body: viewer, headers: { 'x-request-id': `create-viewer-${suffix}` } })).status).toBe(201);
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
  receiver?.close();
}, 60_000);

test('the admin sees a successful login, a failed login, a registration and a user creation, with outcome, status, client address and trace id', async () => {
  const byRequest = (logs: Log[], id: string) => logs.find((log) => log.requestId === id);
  const ids = ['admin-login', 'failed-login', 'register', 'create-viewer'].map((name) => `${name}-${suffix}`);
  const { logs } = await auditLogs('limit=100', (found) => ids.every((id) => byRequest(found, id)));

  const [login, failed, registered, created] = ids.map((id) => byRequest(logs, id)!) as [Log, Log, Log, Log];
  expect(login).toMatchObject({ action: 'POST /api/auth/login', target: '/api/auth/login', outcome: 'success', statusCode: 200, actor: { username: ADMIN.username }, clientAddress: '127.0.0.1', traceId: incomingTrace });
  expect(failed).toMatchObject({ action: 'POST /api/auth/login', outcome: 'denied', statusCode: 401, actor: { id: null, username: ADMIN.username }, organizationId: null, clientAddress: '127.0.0.1' });
  expect(registered).toMatchObject({ action: 'POST /auth/register', outcome: 'success', statusCode: 200, actor: { username: newcomer.email } });
  expect(created).toMatchObject({ action: 'POST /api/users', target: '/api/users', outcome: 'success', statusCode: 201, actor: { id: expect.stringMatching(/^[0-9a-f-]{36}$/), username: ADMIN.username }, organizationId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  for (const log of [login, failed, registered, created]) {
    expect(log.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(log.timestamp).getTime()).toBeGreaterThan(Date.now() - 10 * 60_000);
  }
});

test('without an incoming traceparent the recorded trace id is the gateway\'s own trace of the request', async () => {
  const requestId = `untraced-${suffix}`;
  await request(base, 'POST', '/api/auth/login', { body: { username: ADMIN.username, password: ADMIN.password }, headers: { 'x-request-id': requestId } });
  const { logs } = await auditLogs('action=POST%20/api/auth/login&limit=100', (found) => found.some((log) => log.requestId === requestId));
  const traceId = logs.find((log) => log.requestId === requestId)!.traceId!;
  expect(traceId).toMatch(/^[0-9a-f]{32}$/);
  expect(traceId).not.toBe(incomingTrace);
  await eventually('the request\'s spans at the collector', async () => (receiver.spans.some((span) => span.traceId === traceId) ? true : undefined), 15_000);
});

test('records never contain passwords or request bodies', async () => {
  const { logs } = await auditLogs('limit=100', (found) => found.length >= 4);
  const text = JSON.stringify(logs);
  for (const secret of [ADMIN.password, wrongPassword, newcomer.password, viewer.password, 'New Comer']) expect(text).not.toContain(secret);
});

test('filters by outcome and action, and pages newest first with the RunnerHub pagination fields', async () => {
  const denied = await auditLogs('outcome=denied&action=POST%20/api/auth', (found) => found.length >= 1);
  expect(denied.logs.every((log) => log.outcome === 'denied' && log.action.startsWith('POST /api/auth'))).toBe(true);

  const all = await auditLogs('limit=100', (found) => found.length >= 4);
  const times = all.logs.map((log) => new Date(log.timestamp).getTime());
  expect([...times].sort((a, b) => b - a)).toEqual(times);

  const second = await request(base, 'GET', `${AUDIT}?limit=1&page=2`, { token: adminToken });
  expect(second.status).toBe(200);
  expect(second.body.logs).toHaveLength(1);
  expect(second.body.pagination).toMatchObject({ page: 2, limit: 1, hasPrev: true, hasNext: second.body.pagination.total > 2 });
  expect(second.body.pagination.pages).toBe(second.body.pagination.total);

  const future = await request(base, 'GET', `${AUDIT}?startDate=2100-01-01`, { token: adminToken });
  expect(future.body).toEqual({ logs: [], pagination: { page: 1, limit: 20, total: 0, pages: 0, hasNext: false, hasPrev: false } });
});

test.each([
  ['limit=1000', 'limit'],
  ['outcome=maybe', 'outcome'],
  ['startDate=yesterday', 'startDate'],
  ['actor=not-a-uuid', 'actor'],
])('an invalid query %s is a 400 VALIDATION_ERROR', async (query) => {
  const response = await request(base, 'GET', `${AUDIT}?${query}`, { token: adminToken });
  expect(response.status).toBe(400);
  expect(response.body).toMatchObject({ success: false, error: { code: 'VALIDATION_ERROR' } });
});

test('without a token the audit log is a 401', async () => {
  const response = await request(base, 'GET', AUDIT);
  expect(response.status).toBe(401);
  expect(response.body).toMatchObject({ success: false, error: { code: 'AUTH_REQUIRED' } });
});

test('a viewer of the organisation is refused with 403 PERMISSION_DENIED', async () => {
  const login = await request(base, 'POST', '/api/auth/login', { body: { username: viewer.username, password: viewer.password } });
  expect(login.status).toBe(200);
  const response = await request(base, 'GET', AUDIT, { token: login.body.token });
  expect(response.status).toBe(403);
  expect(response.body).toMatchObject({ success: false, error: { code: 'PERMISSION_DENIED' } });
});

test('the admin of another organisation sees only that organisation\'s records', async () => {
  const login = await request(base, 'POST', '/auth/login', { body: { email: newcomer.email, password: newcomer.password } });
  expect(login.status).toBe(200);
  const response = await request(base, 'GET', AUDIT, { token: login.body.access_token });
  expect(response.status).toBe(200);
  expect(response.body.logs).toEqual([]);
});
