import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { Bus, ensureStreams, injectTraceHeaders, STREAMS } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import { startNats, type NatsServer } from '@runnerhub/infra';
import { auditPlugin, batchesOf, outcomeOf, traceIdOf } from './audit.js';

/** One record as it reached EVENTS, with the message that carried it. */
interface Published {
  subject: string;
  msgId: string | undefined;
  raw: string;
  record: ReturnType<typeof fromBinary<typeof identityV1.AuditRecordSchema>>;
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const admin = { userUid: '6f1c1d2e-4b8a-4f7e-9a53-0c4d5e6f7a8b', organizationUid: '0b9a8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d', username: 'admin' };
let dataDir: string;
let nats: NatsServer;
let bus: Bus;
const published: Published[] = [];
// POST /api/held answers only once the test releases it: the calls it holds all finish at once.
const held = { arrived: 0, release: Promise.resolve() };

async function gateway(options: { publishTimeoutMs?: number; maxQueued?: number } = {}): Promise<{ app: FastifyInstance; registry: Registry }> {
  const registry = new Registry();
  const app = Fastify({ logger: false, requestIdHeader: 'x-request-id' });
  // Stands in for the auth plugin: a test header says who is calling.
  app.addHook('onRequest', async (request) => {
    if (request.headers['x-test-caller'] === 'admin') request.caller = { ...admin, role: 'admin', sessionId: 's', clientAddress: request.ip };
  });
  await app.register(auditPlugin, { bus, registry, retryIntervalMs: 100, ...options });
  app.post<{ Body: { username: string; password: string } }>('/api/auth/login', async (request, reply) =>
    request.body.password === 'right-password' ? { token: 't' } : reply.code(401).send({ error: 'invalid' }));
  app.post('/auth/register', async () => ({ uid: 'u' }));
  app.get('/api/things', async () => []);
  app.post('/api/held', async () => {
    held.arrived++;
    await held.release;
    return { ok: true };
  });
  app.post('/api/things', async (request, reply) => (request.caller ? { ok: true } : reply.code(401).send({})));
  app.put('/api/things/:id', async () => ({ ok: true }));
  app.patch('/api/things/:id', async (_request, reply) => reply.code(429).send({}));
  app.delete('/api/things/:id', async () => {
    throw new Error('exploded');
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, registry };
}

async function send(app: FastifyInstance, options: { method: string; url: string; headers?: Record<string, string>; payload?: unknown }): Promise<{ statusCode: number }> {
  const { port } = app.server.address() as AddressInfo;
  const headers = { ...options.headers, ...(options.payload === undefined ? {} : { 'content-type': 'application/json' }) };
  const response = await fetch(`http://127.0.0.1:${port}${options.url}`, { method: options.method, headers, body: options.payload === undefined ? undefined : JSON.stringify(options.payload) });
  await response.arrayBuffer();
  return { statusCode: response.status };
}

async function failures(registry: Registry, result: 'queued' | 'dropped'): Promise<number> {
  const metric = await registry.getSingleMetric('runnerhub_audit_publish_failures_total')!.get();
  return metric.values.find((v) => v.labels.result === result)?.value ?? 0;
}

async function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const recordOf = (action: string, target?: string) =>
  eventually(action, () => published.find((p) => p.record.action === action && (!target || p.record.target === target)));

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'rh-gw-audit-'));
  nats = await startNats({ dataDir });
  bus = await Bus.connect({ servers: nats.url, name: 'gateway-test', logger: quiet, registry: new Registry() });
  await ensureStreams(bus);
  const js = bus.jetstream();
  const jsm = await bus.jetstreamManager();
  await jsm.consumers.add(STREAMS.EVENTS.name, { durable_name: 'audit-test', filter_subject: 'events.audit.>', ack_policy: 'explicit' });
  const consumer = await js.consumers.get(STREAMS.EVENTS.name, 'audit-test');
  void (async () => {
    for await (const msg of await consumer.consume()) {
      const message = { subject: msg.subject, msgId: msg.headers?.get('Nats-Msg-Id'), raw: Buffer.from(msg.data).toString('latin1') };
      for (const record of fromBinary(identityV1.AuditRecordBatchSchema, msg.data).records) published.push({ ...message, record });
      msg.ack();
    }
  })();
}, 60_000);

afterAll(async () => {
  await bus?.drain();
  await nats?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('what is recorded', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    ({ app } = await gateway());
  });
  afterAll(() => app.close());

  test('a state-changing call is recorded with actor, organisation, route, path, outcome, status, address and request id, durably in EVENTS', async () => {
    const response = await send(app, { method: 'PUT', url: '/api/things/42?force=true', headers: { 'x-test-caller': 'admin', 'x-request-id': 'req-1' }, payload: { name: 'n' } });
    expect(response.statusCode).toBe(200);
    const { subject, msgId, record } = await recordOf('PUT /api/things/:id');
    expect(subject).toBe('events.audit.batch');
    expect(msgId).toMatch(/^[0-9a-f-]{36}$/);
    expect(record).toMatchObject({
      actorUid: admin.userUid,
      actorUsername: 'admin',
      organizationUid: admin.organizationUid,
      target: '/api/things/42',
      outcome: 'success',
      statusCode: 200,
      clientAddress: '127.0.0.1',
      requestId: 'req-1',
    });
    expect(record.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Math.abs(Number(record.at!.seconds) * 1000 - Date.now())).toBeLessThan(60_000);
  });

  test('reads are not recorded', async () => {
    await send(app, { method: 'GET', url: '/api/things' });
    await send(app, { method: 'HEAD', url: '/api/things' });
    await send(app, { method: 'OPTIONS', url: '/api/things' });
    await send(app, { method: 'POST', url: '/api/things', headers: { 'x-test-caller': 'admin' }, payload: {} });
    await recordOf('POST /api/things');
    expect(published.filter((p) => ['GET', 'HEAD', 'OPTIONS'].includes(p.record.action.split(' ')[0]!))).toEqual([]);
  });

  test.each([
    ['PATCH', '/api/things/1', 'PATCH /api/things/:id', 'denied', 429],
    ['DELETE', '/api/things/1', 'DELETE /api/things/:id', 'failure', 500],
    ['POST', '/api/nowhere', 'POST unmatched', 'denied', 404],
  ])('%s %s is recorded as %s with its status', async (method, url, action, outcome, status) => {
    await send(app, { method, url, headers: { 'x-test-caller': 'admin' } });
    const { record } = await recordOf(action, url);
    expect(record).toMatchObject({ outcome, statusCode: status });
  });

  test('a login records the claimed username, never the password or anything else in the body', async () => {
    await send(app, { method: 'POST', url: '/api/auth/login', payload: { username: 'mallory', password: 'wrong-password-hunter2', note: 'body-marker' } });
    const failed = await recordOf('POST /api/auth/login');
    expect(failed.record).toMatchObject({ actorUid: '', actorUsername: 'mallory', organizationUid: '', outcome: 'denied', statusCode: 401 });
    await send(app, { method: 'POST', url: '/auth/register', payload: { email: 'new@example.com', password: 'register-secret-hunter2' } });
    const registered = await recordOf('POST /auth/register');
    expect(registered.record).toMatchObject({ actorUsername: 'new@example.com', outcome: 'success' });
    for (const { raw } of [failed, registered]) {
      expect(raw).not.toContain('hunter2');
      expect(raw).not.toContain('body-marker');
    }
  });

  test('outside login and registration a body\'s username is never taken for the actor', async () => {
    await send(app, { method: 'POST', url: '/api/things', payload: { username: 'ssh-user' } });
    const { record } = await eventually('the anonymous call', () => published.find((p) => p.record.action === 'POST /api/things' && p.record.statusCode === 401));
    expect(record.actorUsername).toBe('');
  });

  test('the trace id is the incoming traceparent\'s when no span is active', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    await send(app, { method: 'POST', url: '/api/things', headers: { 'x-test-caller': 'admin', traceparent: `00-${traceId}-00f067aa0ba902b7-01`, 'x-request-id': 'traced' } });
    const { record } = await eventually('the traced call', () => published.find((p) => p.record.requestId === 'traced'));
    expect(record.traceId).toBe(traceId);
  });

  test('calls made at once share messages, and each record is published once', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `burst-${i}`);
    let release!: () => void;
    held.arrived = 0;
    held.release = new Promise((resolve) => (release = resolve));
    const responses = Promise.all(ids.map((id) => send(app, { method: 'POST', url: '/api/held', headers: { 'x-test-caller': 'admin', 'x-request-id': id } })));
    await eventually('every call to arrive', () => (held.arrived === ids.length ? true : undefined));
    release();
    await responses;
    const burst = await eventually('every record of the burst', () => {
      const found = published.filter((p) => p.record.requestId.startsWith('burst-'));
      return found.length >= ids.length ? found : undefined;
    });
    expect(burst.map((p) => p.record.requestId).sort()).toEqual([...ids].sort());
    expect(new Set(burst.map((p) => p.msgId)).size).toBeLessThan(ids.length);
  });
});

describe('batches', () => {
  const submitted = (count: number, target = '/api/things') => Array.from({ length: count }, () => ({
    record: create(identityV1.AuditRecordSchema, { id: randomUUID(), at: timestampNow(), action: 'POST /api/things', target, outcome: 'success', statusCode: 200 }),
    headers: injectTraceHeaders(),
  }));
  const encodedSize = (batch: ReturnType<typeof batchesOf>[number]) =>
    toBinary(identityV1.AuditRecordBatchSchema, create(identityV1.AuditRecordBatchSchema, { records: batch.records.map(({ record }) => record) })).length;

  test('hold at most 200 records, in order, each batch with its own message id', () => {
    const records = submitted(450);
    const batches = batchesOf(records);
    expect(batches.map((batch) => batch.records.length)).toEqual([200, 200, 50]);
    expect(batches.flatMap((batch) => batch.records.map(({ record }) => record.id))).toEqual(records.map(({ record }) => record.id));
    expect(new Set(batches.map((batch) => batch.msgID)).size).toBe(3);
  });

  test('hold at most 512 KiB of records, far under NATS\'s 1 MiB max payload', () => {
    const batches = batchesOf(submitted(400, `/api/${'\u00e9'.repeat(2_000)}`));
    expect(batches.length).toBeGreaterThan(2);
    for (const batch of batches) expect(encodedSize(batch)).toBeLessThanOrEqual(512 * 1024);
  });
});

test.each([
  [200, 'success'], [302, 'success'], [400, 'failure'], [401, 'denied'], [403, 'denied'], [404, 'denied'], [409, 'failure'], [429, 'denied'], [503, 'failure'],
])('status %i is the outcome %s', (status, outcome) => {
  expect(outcomeOf(status)).toBe(outcome);
});

test.each([
  ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', '4bf92f3577b34da6a3ce929d0e0e4736'],
  ['00-00000000000000000000000000000000-00f067aa0ba902b7-01', ''],
  ['garbage', ''],
  [undefined, ''],
])('the traceparent %s has the trace id "%s"', (traceparent, traceId) => {
  expect(traceIdOf(traceparent)).toBe(traceId);
});

describe('when JetStream does not take records', () => {
  beforeEach(async () => {
    const jsm = await bus.jetstreamManager();
    await jsm.streams.delete(STREAMS.EVENTS.name);
  });
  afterEach(async () => {
    await ensureStreams(bus);
    const jsm = await bus.jetstreamManager();
    await jsm.consumers.add(STREAMS.EVENTS.name, { durable_name: 'audit-test', filter_subject: 'events.audit.>', ack_policy: 'explicit' });
  });

  test('the response is not held up, and the record is published once JetStream is back', async () => {
    const { app, registry } = await gateway({ publishTimeoutMs: 5_000 });
    try {
      const started = Date.now();
      const response = await send(app, { method: 'POST', url: '/api/things', headers: { 'x-test-caller': 'admin', 'x-request-id': 'while-down' } });
      expect(response.statusCode).toBe(200);
      expect(Date.now() - started).toBeLessThan(2_000);
      await eventually('the failure to be counted', async () => ((await failures(registry, 'queued')) === 1 ? true : undefined));

      await ensureStreams(bus);
      const jsm = await bus.jetstreamManager();
      const stored = await eventually('the retried record in EVENTS', async () => {
        const message = await jsm.streams.getMessage(STREAMS.EVENTS.name, { last_by_subj: 'events.audit.batch' }).catch(() => null);
        return message ?? undefined;
      });
      expect(fromBinary(identityV1.AuditRecordBatchSchema, stored.data).records.map((r) => r.requestId)).toEqual(['while-down']);
    } finally {
      await app.close();
    }
  });

  test('the retry queue is bounded in records: beyond it the oldest are dropped and counted, the others published in order', async () => {
    const { app, registry } = await gateway({ publishTimeoutMs: 200, maxQueued: 4 });
    try {
      // Three waves of three calls made at once: each wave is queued, as one batch or more, before the next.
      for (const wave of ['a', 'b', 'c']) {
        await Promise.all([0, 1, 2].map((i) => send(app, { method: 'POST', url: '/api/things', headers: { 'x-test-caller': 'admin', 'x-request-id': `${wave}-${i}` } })));
        const expected = wave === 'a' ? 3 : wave === 'b' ? 6 : 9;
        await eventually(`wave ${wave} to be queued`, async () => ((await failures(registry, 'queued')) === expected ? true : undefined));
      }
      expect(await failures(registry, 'dropped')).toBe(5);

      await ensureStreams(bus);
      const jsm = await bus.jetstreamManager();
      const kept = await eventually('the four kept records in EVENTS', async () => {
        const { state } = await jsm.streams.info(STREAMS.EVENTS.name);
        const messages = await Promise.all(Array.from({ length: state.messages }, (_, i) => jsm.streams.getMessage(STREAMS.EVENTS.name, { seq: state.first_seq + i })));
        const ids = messages.flatMap((m) => fromBinary(identityV1.AuditRecordBatchSchema, m!.data).records.map((r) => r.requestId));
        return ids.length === 4 ? ids : undefined;
      });
      // All of wave a and the two oldest of wave b went, even from within a batch; the rest kept their order.
      expect(kept[0]).toMatch(/^b-/);
      expect(kept.slice(1).sort()).toEqual(['c-0', 'c-1', 'c-2']);
    } finally {
      await app.close();
    }
  });
});
