import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bus, createClient, serveService, subscribeEvents, type ServedService, type ServiceClient } from '@runnerhub/bus';
import { inventoryV1 } from '@runnerhub/contracts';
import { deployMigrations } from '@runnerhub/db-migrate';
import { startNats, startThrowawayPostgres, type NatsServer, type ThrowawayPostgres } from '@runnerhub/infra';
import { createMetricsRegistry } from '@runnerhub/observability';
import { SecretBox } from '@runnerhub/secrets';
import type pg from 'pg';
import { createDatabase, type InventoryDb } from '../src/adapters/database.js';
import { serverChangedPublisher } from '../src/adapters/events.js';
import { Credentials } from '../src/domain/credentials.js';
import { Servers } from '../src/domain/servers.js';
import { serversHandlers } from '../src/handlers/servers.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const ORG = randomUUID();
const caller = { userUid: randomUUID(), organizationUid: ORG, username: 'tester' };
const FINGERPRINT = `SHA256:${'A'.repeat(43)}`;

let postgres: ThrowawayPostgres;
let natsDir: string;
let nats: NatsServer;
let db: InventoryDb;
let pool: pg.Pool;
let inventoryBus: Bus;
let clientBus: Bus;
let served: ServedService;
let servers: Servers;
let client: ServiceClient<typeof inventoryV1.Servers.method>;
let subscription: ReturnType<typeof subscribeEvents>;
let fenceUid: string;
/** Every ServerChanged event seen on the bus, in order. */
const received: Array<{ subject: string; event: inventoryV1.ServerChanged }> = [];

async function connect(name: string): Promise<Bus> {
  return Bus.connect({ servers: nats.url, name, logger: quiet, registry: createMetricsRegistry(`${name}-${randomUUID().slice(0, 8)}`) });
}

async function eventually<T>(what: string, probe: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function createServer(name: string, extra: { maxSessions?: number } = {}): Promise<inventoryV1.Server> {
  const { server } = await client.create({ caller, name, hostname: '127.0.0.1', username: 'deploy', authType: 'password', password: 'a-password-1234', ...extra });
  return server!;
}

const byUid = (uid: string) => ({ ref: { case: 'uid' as const, value: uid } });

/** The events about `serverUid` that `action` caused. */
async function eventsAfter(serverUid: string, action: () => Promise<unknown>): Promise<inventoryV1.ServerChanged[]> {
  const before = received.length;
  await action();
  await fence();
  return received.slice(before).map((r) => r.event).filter((event) => event.serverUid === serverUid);
}

/**
 * Waits until inventory's next event is seen: one connection publishes them
 * in order, so everything published before it has arrived too.
 */
async function fence(): Promise<void> {
  const before = received.length;
  await client.update({ caller, server: byUid(fenceUid), description: randomUUID() });
  await eventually('the fence event', () => received.slice(before).find((r) => r.event.serverUid === fenceUid));
}

beforeAll(async () => {
  postgres = await startThrowawayPostgres();
  const url = await postgres.freshDatabase('inventory');
  await deployMigrations({ schemaPath: join(new URL('.', import.meta.url).pathname, '../prisma/schema.prisma'), databaseUrl: url });
  ({ db, pool } = createDatabase({ url, poolSize: 5, timeoutMs: 5_000 }));
  natsDir = mkdtempSync(join(tmpdir(), 'rh-inventory-'));
  nats = await startNats({ dataDir: natsDir });
  inventoryBus = await connect('inventory');
  clientBus = await connect('inventory-test');
  servers = new Servers(db, new Credentials(new SecretBox('t', { t: randomBytes(32).toString('base64') })), serverChangedPublisher(inventoryBus));
  // Identity is not under test here: the caller may do anything in ORG.
  served = await serveService(inventoryBus, { name: 'inventory', version: '0.0.0', description: 'test' }, [serversHandlers(servers, { organizationOf: async () => ORG })]);
  client = createClient(clientBus, inventoryV1.Servers);
  subscription = subscribeEvents(clientBus, 'events.inventory.server.*.changed', inventoryV1.ServerChangedSchema, (event, subject) => received.push({ subject, event }));
  await clientBus.nc.flush();
  fenceUid = (await createServer('fence')).uid;
}, 90_000);

afterAll(async () => {
  subscription?.unsubscribe();
  await served?.stop();
  await inventoryBus?.drain();
  await clientBus?.drain();
  await nats?.stop();
  await db?.$disconnect();
  await pool?.end();
  await postgres?.dispose();
  if (natsDir) rmSync(natsDir, { recursive: true, force: true });
});

describe('max_sessions', () => {
  test('is unset (0) unless given, and is stored and returned when given', async () => {
    expect((await createServer('limits-default')).maxSessions).toBe(0);
    const limited = await createServer('limits-set', { maxSessions: 25 });
    expect(limited.maxSessions).toBe(25);
    expect((await client.get({ caller, server: byUid(limited.uid) })).server!.maxSessions).toBe(25);
    expect((await db.server.findUniqueOrThrow({ where: { id: limited.uid } })).maxSessions).toBe(25);
    const listed = await client.list({ caller, search: 'limits-set' });
    expect(listed.servers.map((s) => s.maxSessions)).toEqual([25]);
  });

  test('an update sets it, leaves it alone when absent, and clears it', async () => {
    const server = await createServer('limits-update');
    expect((await client.update({ caller, server: byUid(server.uid), maxSessions: 1000 })).server!.maxSessions).toBe(1000);
    expect((await client.update({ caller, server: byUid(server.uid), name: 'limits-update-renamed' })).server!.maxSessions).toBe(1000);
    expect((await client.update({ caller, server: byUid(server.uid), clearMaxSessions: true })).server!.maxSessions).toBe(0);
    expect((await db.server.findUniqueOrThrow({ where: { id: server.uid } })).maxSessions).toBeNull();
    expect((await client.update({ caller, server: { ref: { case: 'number', value: server.number } }, maxSessions: 1 })).server!.maxSessions).toBe(1);
  });

  test.each([0, 1001])('%i is refused on create and on update, naming max_sessions', async (maxSessions) => {
    await expect(createServer(`limits-bad-${maxSessions}`, { maxSessions })).rejects.toMatchObject({ code: 'VALIDATION_ERROR', field: 'max_sessions' });
    const server = await createServer(`limits-kept-${maxSessions}`, { maxSessions: 5 });
    await expect(client.update({ caller, server: byUid(server.uid), maxSessions })).rejects.toMatchObject({ code: 'VALIDATION_ERROR', field: 'max_sessions' });
    expect((await client.get({ caller, server: byUid(server.uid) })).server!.maxSessions).toBe(5);
  });

  test('a value and a clear at once are refused', async () => {
    const server = await createServer('limits-both', { maxSessions: 5 });
    await expect(client.update({ caller, server: byUid(server.uid), maxSessions: 7, clearMaxSessions: true })).rejects.toMatchObject({ code: 'VALIDATION_ERROR', field: 'max_sessions' });
  });

  // The bus carries a uint32: a fraction can only reach the domain from inside the service.
  test('a non-integer is refused, naming max_sessions', async () => {
    const input = { name: 'limits-fraction', hostname: '127.0.0.1', port: 22, username: 'deploy', authType: '', password: '', privateKey: '', description: '', tags: [], status: '', nodeType: '', maxSessions: 2.5 };
    await expect(servers.create(ORG, input)).rejects.toMatchObject({ code: 'VALIDATION_ERROR', field: 'max_sessions' });
    const server = await createServer('limits-fraction-update');
    await expect(servers.update(ORG, { uid: server.uid }, { maxSessions: 2.5 })).rejects.toMatchObject({ code: 'VALIDATION_ERROR', field: 'max_sessions' });
  });
});

describe('ServerChanged events', () => {
  test('an update of any field, credentials included, is announced on events.inventory.server.<uid>.changed', async () => {
    const server = await createServer('events-update');
    const before = received.length;
    await client.update({ caller, server: byUid(server.uid), maxSessions: 3 });
    const seen = await eventually('the update event', () => received.slice(before).find((r) => r.event.serverUid === server.uid));
    expect(seen.subject).toBe(`events.inventory.server.${server.uid}.changed`);
    expect(seen.event).toMatchObject({ organizationUid: ORG, serverUid: server.uid, deleted: false });

    expect(await eventsAfter(server.uid, () => client.update({ caller, server: byUid(server.uid), password: 'another-password-99' }))).toEqual([
      expect.objectContaining({ serverUid: server.uid, deleted: false }),
    ]);
    expect(await eventsAfter(server.uid, () => client.update({ caller, server: byUid(server.uid), status: 'inactive' }))).toHaveLength(1);
  });

  test('a plain get or list announces nothing, nor does a refused update', async () => {
    const server = await createServer('events-quiet');
    const events = await eventsAfter(server.uid, async () => {
      await client.get({ caller, server: byUid(server.uid) });
      await client.list({ caller });
      await client.update({ caller, server: byUid(server.uid), maxSessions: 0 }).catch(() => undefined);
    });
    expect(events).toEqual([]);
  });

  test('a host key recorded on first use is announced; the same key again is not; accepting a new one is', async () => {
    const server = await createServer('events-host-key');
    const record = () => client.recordHostKey({ organizationUid: ORG, serverUid: server.uid.toUpperCase(), fingerprint: FINGERPRINT });
    expect(await eventsAfter(server.uid, record)).toEqual([expect.objectContaining({ organizationUid: ORG, serverUid: server.uid, deleted: false })]);
    expect(await eventsAfter(server.uid, record)).toEqual([]);
    expect(await eventsAfter(server.uid, () => client.update({ caller, server: byUid(server.uid), acceptHostKey: true }))).toHaveLength(1);
  });

  test('a change of health status is announced; the same verdict again is not', async () => {
    const server = await createServer('events-health');
    const check = (healthy: boolean) => () => client.recordHealth({ organizationUid: ORG, serverUid: server.uid, healthy });
    expect(await eventsAfter(server.uid, check(true))).toHaveLength(1);
    expect(await eventsAfter(server.uid, check(true))).toEqual([]);
    expect((await client.get({ caller, server: byUid(server.uid) })).server!.healthStatus).toBe('healthy');
    expect(await eventsAfter(server.uid, check(false))).toHaveLength(1);
    await expect(client.recordHealth({ organizationUid: ORG, serverUid: randomUUID(), healthy: true })).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
  });

  test('a delete, even by biRun number, is announced with the uid and deleted = true', async () => {
    const server = await createServer('events-delete');
    const events = await eventsAfter(server.uid, () => client.delete({ caller, server: { ref: { case: 'number', value: server.number } } }));
    expect(events).toEqual([expect.objectContaining({ organizationUid: ORG, serverUid: server.uid, deleted: true })]);
    expect(await eventsAfter(server.uid, () => client.delete({ caller, server: byUid(server.uid) }).catch(() => undefined))).toEqual([]);
  });
});
