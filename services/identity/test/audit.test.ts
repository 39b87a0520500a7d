import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Bus, createClient, ensureStreams, serveService } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import { deployMigrations } from '@runnerhub/db-migrate';
import { createMetricsRegistry } from '@runnerhub/observability';
import { startNats, startThrowawayPostgres, type NatsServer, type ThrowawayPostgres } from '@runnerhub/infra';
import { AUDIT_CONSUMER, AuditConsumer } from '../src/adapters/audit-consumer.js';
import { createDatabase, type IdentityDb } from '../src/adapters/database.js';
import { AuditLog, type AuditCaller } from '../src/domain/audit.js';
import { auditHandlers } from '../src/handlers/audit.js';

type RecordInit = MessageInitShape<typeof identityV1.AuditRecordSchema>;

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const options = { batchSize: 50, ackWaitMs: 2_000, retryDelayMs: 100 };
let postgres: ThrowawayPostgres;
let natsDir: string;
let nats: NatsServer;
let db: IdentityDb;
let pool: { end(): Promise<void>; query(sql: string): Promise<unknown> };
let bus: Bus;
let audit: AuditLog;
let consumer: AuditConsumer;

// Two organisations of the platform: the initial admin's ("default") and a tenant's.
const platform = { organization: randomUUID(), admin: randomUUID(), viewer: randomUUID() };
const tenant = { organization: randomUUID(), admin: randomUUID() };

function record(overrides: Partial<RecordInit> = {}): RecordInit {
  return {
    id: randomUUID(),
    at: timestampFromDate(new Date()),
    actorUid: platform.admin,
    actorUsername: 'admin',
    organizationUid: platform.organization,
    action: 'POST /api/users',
    target: '/api/users',
    outcome: 'success',
    statusCode: 201,
    clientAddress: '127.0.0.1',
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    requestId: randomUUID(),
    ...overrides,
  };
}

/** As the gateway publishes records: many to a message on events.audit.batch. */
async function publish(records: RecordInit[], msgID = randomUUID()): Promise<void> {
  await bus.jetstream().publish('events.audit.batch', toBinary(identityV1.AuditRecordBatchSchema, create(identityV1.AuditRecordBatchSchema, { records })), { msgID });
}

/** As gateways from before batching published a record: alone, on events.audit.<outcome>. */
async function publishAlone(message: RecordInit): Promise<void> {
  await bus.jetstream().publish(`events.audit.${message.outcome}`, toBinary(identityV1.AuditRecordSchema, create(identityV1.AuditRecordSchema, message)), { msgID: String(message.id) });
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves once the shared consumer has nothing delivered-but-unacknowledged and nothing left to deliver. */
async function drained(): Promise<void> {
  const jsm = await bus.jetstreamManager();
  await eventually('the audit consumer to catch up', async () => {
    const info = await jsm.consumers.info('EVENTS', AUDIT_CONSUMER);
    return info.num_pending === 0 && info.num_ack_pending === 0 ? true : undefined;
  });
}

const stored = (id: string) => db.auditLog.count({ where: { id } });
const storedOf = (records: RecordInit[]) => db.auditLog.count({ where: { id: { in: records.map((r) => String(r.id)) } } });

async function seedOrganizations(): Promise<void> {
  await db.organization.create({ data: { id: platform.organization, name: 'Default', shortName: 'default', type: 'organization' } });
  await db.organization.create({ data: { id: tenant.organization, name: 'Tenant', shortName: 'tenant', type: 'organization' } });
  for (const [id, username, organizationId, role] of [
    [platform.admin, 'admin', platform.organization, 'admin'],
    [platform.viewer, 'viewer', platform.organization, 'viewer'],
    [tenant.admin, 'tenant-admin', tenant.organization, 'admin'],
  ] as const) {
    await db.user.create({ data: { id, username, defaultOrganizationId: organizationId } });
    await db.membership.create({ data: { userId: id, organizationId, role } });
  }
}

beforeAll(async () => {
  postgres = await startThrowawayPostgres();
  const url = await postgres.freshDatabase('identity');
  await deployMigrations({ schemaPath: join(new URL('.', import.meta.url).pathname, '../prisma/schema.prisma'), databaseUrl: url });
  ({ db, pool } = createDatabase({ url, poolSize: 5, timeoutMs: 5_000 }));
  natsDir = mkdtempSync(join(tmpdir(), 'rh-audit-'));
  nats = await startNats({ dataDir: natsDir });
  bus = await Bus.connect({ servers: nats.url, name: 'audit-test', logger: quiet, registry: createMetricsRegistry('audit-test') });
  await ensureStreams(bus);
  await seedOrganizations();
  audit = new AuditLog(db, pool);
  consumer = new AuditConsumer(bus, audit, quiet, options);
  consumer.start();
}, 60_000);

afterAll(async () => {
  await consumer?.stop();
  await bus?.drain();
  await nats?.stop();
  await db?.$disconnect();
  await pool?.end();
  await postgres?.dispose();
  if (natsDir) rmSync(natsDir, { recursive: true, force: true });
});

describe('storing', () => {
  test('a batch published twice, with its message id and past the stream\'s deduplication with a new one, stores each record once', async () => {
    const twice = [record(), record(), record()];
    const msgID = randomUUID();
    await publish(twice, msgID);
    await publish(twice, msgID);
    await publish(twice);
    await eventually('the batch', async () => ((await storedOf(twice)) === 3 ? true : undefined));
    await drained();
    for (const r of twice) expect(await stored(String(r.id))).toBe(1);
  });

  test('a record published alone on events.audit.<outcome>, as gateways before batching did, is stored', async () => {
    const alone = record({ outcome: 'failure', statusCode: 500 });
    await publishAlone(alone);
    await publishAlone(alone);
    await eventually('the record', async () => ((await stored(String(alone.id))) > 0 ? true : undefined));
    await drained();
    expect(await stored(String(alone.id))).toBe(1);
  });

  test('every field of a record is stored as published', async () => {
    const full = record({ actorUsername: 'admin', action: 'DELETE /api/users/:id', target: '/api/users/42', outcome: 'denied', statusCode: 403, clientAddress: '::1' });
    await publish([full]);
    const row = await eventually('the record', () => db.auditLog.findUnique({ where: { id: String(full.id) } }).then((r) => r ?? undefined));
    expect(row).toMatchObject({
      actorId: platform.admin,
      actorUsername: 'admin',
      organizationId: platform.organization,
      action: 'DELETE /api/users/:id',
      target: '/api/users/42',
      outcome: 'denied',
      statusCode: 403,
      clientAddress: '::1',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      requestId: full.requestId,
    });
  });

  test('records published while no identity instance consumes are stored once one starts', async () => {
    await consumer.stop();
    const waiting = [record(), record(), record()];
    await publish(waiting.slice(0, 2));
    await publishAlone(waiting[2]!);
    await new Promise((r) => setTimeout(r, 300));
    expect(await storedOf(waiting)).toBe(0);

    consumer = new AuditConsumer(bus, audit, quiet, options);
    consumer.start();
    await eventually('the waiting records', async () => ((await storedOf(waiting)) === 3 ? true : undefined));
  });

  test('a burst of batches shared by two instances is stored completely, each record once, several messages to an insert', async () => {
    await consumer.stop();
    let inserts = 0;
    const counting = { append: (entries: Parameters<AuditLog['append']>[0]) => (inserts++, audit.append(entries)) } as AuditLog;
    const second = await Bus.connect({ servers: nats.url, name: 'audit-test-2', logger: quiet, registry: createMetricsRegistry('audit-test') });
    const instances = [new AuditConsumer(bus, counting, quiet, options), new AuditConsumer(second, counting, quiet, options)];
    try {
      const burst = Array.from({ length: 600 }, () => record({ action: 'PATCH /api/burst' }));
      const batches = Array.from({ length: 100 }, (_, i) => burst.slice(i * 6, i * 6 + 6));
      // Published before the instances start, so each pull finds many messages waiting.
      await Promise.all(batches.map((batch) => publish(batch)));
      instances.forEach((instance) => instance.start());
      await eventually('the burst', async () => ((await db.auditLog.count({ where: { action: 'PATCH /api/burst' } })) === 600 ? true : undefined), 20_000);
      await drained();
      expect(await db.auditLog.count({ where: { action: 'PATCH /api/burst' } })).toBe(600);
      expect(inserts).toBeLessThan(batches.length);
    } finally {
      await Promise.all(instances.map((instance) => instance.stop()));
      await second.drain();
      consumer = new AuditConsumer(bus, audit, quiet, options);
      consumer.start();
    }
  });

  test('a batch the database refuses is redelivered and stored later', async () => {
    await consumer.stop();
    let refusals = 1;
    const flaky = {
      append: async (entries: Parameters<AuditLog['append']>[0]) => {
        if (refusals-- > 0) throw new Error('database unavailable');
        return audit.append(entries);
      },
    } as AuditLog;
    consumer = new AuditConsumer(bus, flaky, quiet, options);
    consumer.start();
    const retried = record();
    await publish([retried]);
    await eventually('the redelivered record', async () => ((await stored(String(retried.id))) === 1 ? true : undefined));
    expect(refusals).toBeLessThan(0);
    await consumer.stop();
    consumer = new AuditConsumer(bus, audit, quiet, options);
    consumer.start();
  });

  test('a malformed message is discarded without holding back the messages after it', async () => {
    await bus.jetstream().publish('events.audit.batch', new Uint8Array([0xff, 0xff, 0xff]));
    await bus.jetstream().publish('events.audit.success', new Uint8Array([0xff, 0xff, 0xff]));
    await publishAlone(record({ id: 'not-a-uuid' }));
    await publish([record({ id: 'not-a-uuid' }), record({ outcome: 'unheard-of' })]);
    const good = record();
    await publish([good]);
    await eventually('the good record', async () => ((await stored(String(good.id))) === 1 ? true : undefined));
    await drained();
  });

  test('the records of a batch that cannot be stored are skipped, the others stored', async () => {
    const good = [record(), record()];
    const unstorable = [record({ actorUid: 'someone' }), record({ statusCode: 42 })];
    await publish([unstorable[0]!, good[0]!, unstorable[1]!, good[1]!]);
    await eventually('the storable records', async () => ((await storedOf(good)) === 2 ? true : undefined));
    await drained();
    expect(await storedOf(unstorable)).toBe(0);
  });

  test('a consumer deleted from JetStream is created again and catches up', async () => {
    const jsm = await bus.jetstreamManager();
    await jsm.consumers.delete('EVENTS', AUDIT_CONSUMER);
    const meanwhile = record();
    await publish([meanwhile]);
    await eventually('the record published after the deletion', async () => ((await stored(String(meanwhile.id))) === 1 ? true : undefined), 20_000);
  }, 30_000);

  test('an instance stopped while it is still starting stops at once', async () => {
    const starting = new AuditConsumer(bus, audit, quiet, options);
    starting.start();
    const started = Date.now();
    await starting.stop();
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  test('consuming resumes by itself after NATS restarts', async () => {
    await nats.kill();
    await nats.start();
    const after = record();
    await eventually('a publish after the restart', () => publish([after]).then(() => true, () => undefined), 15_000);
    await eventually('the record published after the restart', async () => ((await stored(String(after.id))) === 1 ? true : undefined), 20_000);
  }, 40_000);
});

describe('append-only', () => {
  test.each([
    ['UPDATE', `UPDATE audit_logs SET outcome = 'success'`],
    ['DELETE', 'DELETE FROM audit_logs'],
    ['TRUNCATE', 'TRUNCATE audit_logs'],
  ])('the database refuses %s on audit_logs', async (_verb, sql) => {
    const before = await db.auditLog.count();
    expect(before).toBeGreaterThan(0);
    await expect(pool.query(sql)).rejects.toThrow(/append-only/);
    expect(await db.auditLog.count()).toBe(before);
  });
});

describe('Audit.List', () => {
  const admin: AuditCaller = { userUid: platform.admin, organizationUid: platform.organization };
  const tenantAdmin: AuditCaller = { userUid: tenant.admin, organizationUid: tenant.organization };
  const query = { page: 1, limit: 20, actorUid: '', action: '', outcome: '' };
  const base = new Date('2030-01-01T00:00:00Z');
  const at = (minutes: number) => new Date(base.getTime() + minutes * 60_000);

  beforeAll(async () => {
    const entry = (minutes: number, overrides: Partial<Parameters<AuditLog['append']>[0][number]>) => ({
      id: randomUUID(), at: at(minutes), actorUid: platform.admin, actorUsername: 'admin', organizationUid: platform.organization,
      action: 'POST /api/list-test', target: '/api/list-test', outcome: 'success', statusCode: 200,
      clientAddress: '127.0.0.1', traceId: '', requestId: 'r', ...overrides,
    });
    await audit.append([
      ...Array.from({ length: 25 }, (_, i) => entry(i, {})),
      entry(30, { action: 'DELETE /api/list-test/:id', outcome: 'denied', statusCode: 403, actorUid: platform.viewer, actorUsername: 'viewer' }),
      entry(31, { action: 'POST /api/list-test', organizationUid: tenant.organization, actorUid: tenant.admin, actorUsername: 'tenant-admin' }),
      entry(32, { action: 'POST /api/list-test/login', organizationUid: '', actorUid: '', actorUsername: 'someone', outcome: 'denied', statusCode: 401 }),
    ]);
  });

  const listTest = { ...query, from: at(0), to: at(60) };

  test('lists newest first, 20 per page by default, with page info', async () => {
    const first = await audit.list(admin, listTest);
    expect(first).toMatchObject({ total: 27, page: 1, limit: 20 });
    expect(first.rows).toHaveLength(20);
    expect(first.rows[0]!.at).toEqual(at(32));
    const ats = first.rows.map((r) => r.at.getTime());
    expect([...ats].sort((a, b) => b - a)).toEqual(ats);
    const last = await audit.list(admin, { ...listTest, page: 2 });
    expect(last.rows).toHaveLength(7);
    expect(last.rows.at(-1)!.at).toEqual(at(0));
  });

  test('a limit above 100 is held to 100', async () => {
    expect((await audit.list(admin, { ...listTest, limit: 1_000 })).limit).toBe(100);
  });

  test('filters by actor, action prefix, outcome and time', async () => {
    expect((await audit.list(admin, { ...listTest, actorUid: platform.viewer })).rows.map((r) => r.actorUsername)).toEqual(['viewer']);
    expect((await audit.list(admin, { ...listTest, action: 'DELETE' })).total).toBe(1);
    expect((await audit.list(admin, { ...listTest, action: 'POST /api/list-test' })).total).toBe(26);
    expect((await audit.list(admin, { ...listTest, action: '%' })).total).toBe(0);
    expect((await audit.list(admin, { ...listTest, action: 'POST /api/list_test' })).total).toBe(0);
    expect((await audit.list(admin, { ...listTest, outcome: 'denied' })).total).toBe(2);
    expect((await audit.list(admin, { ...listTest, from: at(10), to: at(14) })).total).toBe(5);
  });

  test('an organisation\'s admin sees its own records only, never another organisation\'s or anonymous calls', async () => {
    const result = await audit.list(tenantAdmin, { ...query, from: at(0), to: at(60) });
    expect(result.total).toBe(1);
    expect(result.rows[0]).toMatchObject({ organizationId: tenant.organization, actorUsername: 'tenant-admin' });
    const platformView = await audit.list(admin, listTest);
    expect(platformView.rows.some((r) => r.organizationId === tenant.organization)).toBe(false);
  });

  test('the platform organisation\'s admins also see calls made without an organisation', async () => {
    const anonymous = await audit.list(admin, { ...listTest, action: 'POST /api/list-test/login' });
    expect(anonymous.rows).toEqual([expect.objectContaining({ organizationId: null, actorUsername: 'someone', outcome: 'denied' })]);
  });

  test.each([
    ['a viewer of the organisation', { userUid: platform.viewer, organizationUid: platform.organization }],
    ['an admin of another organisation naming this one', { userUid: tenant.admin, organizationUid: platform.organization }],
    ['a caller whose token names no organisation', { userUid: platform.admin, organizationUid: '' }],
  ])('%s is PERMISSION_DENIED', async (_who, caller) => {
    await expect(audit.list(caller, query)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
  });

  test('an admin demoted since their token was issued is PERMISSION_DENIED', async () => {
    const demoted = randomUUID();
    await db.user.create({ data: { id: demoted, username: 'demoted', defaultOrganizationId: tenant.organization } });
    await db.membership.create({ data: { userId: demoted, organizationId: tenant.organization, role: 'operator' } });
    await expect(audit.list({ userUid: demoted, organizationUid: tenant.organization }, query)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
  });

  test('served on the bus, an anonymous call is AUTH_REQUIRED and an admin gets records with page info', async () => {
    const service = await serveService(bus, { name: 'identity', version: '0.0.0', description: 'test' }, [auditHandlers(audit)]);
    try {
      const client = createClient(bus, identityV1.Audit);
      await expect(client.list({})).rejects.toMatchObject({ code: 'AUTH_REQUIRED' });
      const reply = await client.list({
        caller: { userUid: platform.admin, organizationUid: platform.organization, role: 'viewer' },
        page: { page: 1, limit: 5 },
        outcome: 'denied',
        from: timestampFromDate(at(0)),
        to: timestampFromDate(at(60)),
      });
      expect(reply.pageInfo).toMatchObject({ page: 1, limit: 5, total: 2, pages: 1 });
      expect(reply.records[0]).toMatchObject({ actorUid: '', actorUsername: 'someone', organizationUid: '', statusCode: 401, outcome: 'denied' });
    } finally {
      await service.stop();
    }
  });
});
