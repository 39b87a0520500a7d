// A server's max_sessions (its sshd's MaxSessions) through the three dialects
// that show servers, and the ServerChanged event inventory publishes when a
// server changes, seen on the stack's NATS.
import { fromBinary } from '@bufbuild/protobuf';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { inventoryV1 } from '@runnerhub/contracts';
import { ADMIN, type Stack } from '@runnerhub/stack';
import { request, startTestStack, type JsonResponse } from './harness.js';

let stack: Stack & { dispose(): Promise<void> };
let base: string;
let token = '';
let defaultOrg = '';

const call = (method: string, path: string, body?: unknown): Promise<JsonResponse> => request(base, method, path, { token, body });

beforeAll(async () => {
  stack = await startTestStack();
  base = stack.gatewayUrl;
  token = (await request(base, 'POST', '/api/auth/login', { body: { username: ADMIN.username, password: ADMIN.password } })).body.token;
  defaultOrg = (await call('GET', '/org')).body[0].uid;
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
}, 60_000);

describe('NewRemora /api/v1/servers', () => {
  const server = { hostname: '127.0.0.1', user: 'deploy', auth_type: 'password', password: 'a-password-1234' };

  test('max_sessions is stored, returned, changed and cleared with null', async () => {
    const created = await call('POST', '/api/v1/servers', { name: 'remora-limits', ...server, max_sessions: 20 });
    expect(created.status).toBe(201);
    expect(created.body.data).toMatchObject({ max_sessions: 20 });
    const id = created.body.data.id as string;
    expect((await call('GET', `/api/v1/servers/${id}`)).body.data.max_sessions).toBe(20);
    expect((await call('PUT', `/api/v1/servers/${id}`, { max_sessions: 50 })).body.data.max_sessions).toBe(50);
    expect((await call('PUT', `/api/v1/servers/${id}`, { is_active: false })).body.data).toMatchObject({ is_active: false, max_sessions: 50 });
    const cleared = await call('PUT', `/api/v1/servers/${id}`, { max_sessions: null });
    expect(cleared.status).toBe(200);
    expect(cleared.body.data.max_sessions).toBeNull();
    expect((await call('POST', '/api/v1/servers', { name: 'remora-default', ...server })).body.data.max_sessions).toBeNull();
  });

  test.each([0, 1001, 2.5, 'many'])('max_sessions %p is a 400 in NewRemora format', async (value) => {
    const created = await call('POST', '/api/v1/servers', { name: `remora-bad-${value}`, ...server, max_sessions: value });
    expect(created.status).toBe(400);
    expect(created.body).toMatchObject({ success: false, data: null, error: expect.stringContaining('max_sessions'), request_id: expect.any(String), timestamp: expect.any(String) });
    const { id } = (await call('POST', '/api/v1/servers', { name: `remora-kept-${value}`, ...server, max_sessions: 5 })).body.data;
    const updated = await call('PUT', `/api/v1/servers/${id}`, { max_sessions: value });
    expect(updated.status).toBe(400);
    expect(updated.body).toMatchObject({ success: false, data: null, error: expect.stringContaining('max_sessions') });
    expect((await call('GET', `/api/v1/servers/${id}`)).body.data.max_sessions).toBe(5);
  });
});

describe('biRun /api/servers/', () => {
  const server = { hostname: '127.0.0.1', username: 'deploy', auth_type: 'password', password: 'a-password-1234' };

  test('max_sessions is stored, returned, changed and cleared with null', async () => {
    const created = await call('POST', '/api/servers/', { name: 'birun-limits', ...server, max_sessions: 8 });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.any(Number), max_sessions: 8 });
    const id = created.body.id as number;
    expect((await call('GET', `/api/servers/${id}`)).body.max_sessions).toBe(8);
    expect((await call('PUT', `/api/servers/${id}`, { max_sessions: 1000 })).body.max_sessions).toBe(1000);
    expect((await call('GET', '/api/servers/?search=birun-limits')).body.servers).toEqual([expect.objectContaining({ id, max_sessions: 1000 })]);
    expect((await call('PUT', `/api/servers/${id}`, { max_sessions: null })).body.max_sessions).toBeNull();
  });

  // biRun is a FastAPI service: its validation failures are 422, not 400.
  test.each([0, 1001, 2.5, 'many'])('max_sessions %p is a 422 in biRun format, naming the field', async (value) => {
    const created = await call('POST', '/api/servers/', { name: `birun-bad-${value}`, ...server, max_sessions: value });
    expect(created.status).toBe(422);
    expect(created.body).toMatchObject({ error: expect.any(String), status: 'error', details: { code: 'VALIDATION_ERROR', field: 'max_sessions' } });
    const { id } = (await call('POST', '/api/servers/', { name: `birun-kept-${value}`, ...server })).body;
    const updated = await call('PUT', `/api/servers/${id}`, { max_sessions: value });
    expect(updated.status).toBe(422);
    expect(updated.body).toMatchObject({ status: 'error', details: { code: 'VALIDATION_ERROR', field: 'max_sessions' } });
  });
});

describe('Runner Pilot /org/{org_id}/nodes', () => {
  test('max_sessions is stored, returned, changed and cleared with null, and is the same record in every dialect', async () => {
    const created = await call('POST', `/org/${defaultOrg}/nodes`, { name: 'pilot-limits', type: 'Remote', ip_address: '127.0.0.1', max_sessions: 4 });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ uid: expect.any(String), max_sessions: 4 });
    const uid = created.body.uid as string;
    expect((await call('GET', `/org/${defaultOrg}/nodes/${uid}`)).body.max_sessions).toBe(4);
    expect((await call('PUT', `/org/${defaultOrg}/nodes/${uid}`, { max_sessions: 12 })).body.max_sessions).toBe(12);
    expect((await call('GET', `/api/v1/servers/${uid}`)).body.data.max_sessions).toBe(12);
    expect((await call('GET', `/org/${defaultOrg}/nodes`)).body).toEqual(expect.arrayContaining([expect.objectContaining({ uid, max_sessions: 12 })]));
    expect((await call('PUT', `/org/${defaultOrg}/nodes/${uid}`, { max_sessions: null })).body.max_sessions).toBeNull();
  });

  test.each([0, 1001, 2.5, 'many'])("max_sessions %p is a 400 in RunnerHub's format, naming the field", async (value) => {
    const created = await call('POST', `/org/${defaultOrg}/nodes`, { name: `pilot-bad-${value}`, type: 'Socket', max_sessions: value });
    expect(created.status).toBe(400);
    expect(created.body).toMatchObject({ success: false, error: { code: 'VALIDATION_ERROR', field: 'max_sessions' } });
    const { uid } = (await call('POST', `/org/${defaultOrg}/nodes`, { name: `pilot-kept-${value}`, type: 'Socket' })).body;
    const updated = await call('PUT', `/org/${defaultOrg}/nodes/${uid}`, { max_sessions: value });
    expect(updated.status).toBe(400);
    expect(updated.body).toMatchObject({ success: false, error: { code: 'VALIDATION_ERROR', field: 'max_sessions' } });
  });
});

describe('ServerChanged events', () => {
  let nc: NatsConnection;

  beforeAll(async () => {
    nc = await connect({ servers: stack.nats.url });
  });

  afterAll(async () => {
    await nc?.drain();
  });

  test('inventory announces a change made through the gateway, and a delete', async () => {
    const { uid } = (await call('POST', `/org/${defaultOrg}/nodes`, { name: 'pilot-announced', type: 'Socket' })).body;
    const subscription = nc.subscribe(`events.inventory.server.${uid}.changed`, { max: 2, timeout: 10_000 });
    await nc.flush();
    expect((await call('PUT', `/org/${defaultOrg}/nodes/${uid}`, { max_sessions: 6 })).status).toBe(200);
    expect((await call('DELETE', `/org/${defaultOrg}/nodes/${uid}`)).status).toBe(200);
    const events: inventoryV1.ServerChanged[] = [];
    for await (const msg of subscription) events.push(fromBinary(inventoryV1.ServerChangedSchema, msg.data));
    expect(events).toEqual([
      expect.objectContaining({ organizationUid: defaultOrg, serverUid: uid, deleted: false }),
      expect.objectContaining({ organizationUid: defaultOrg, serverUid: uid, deleted: true }),
    ]);
  });
});
