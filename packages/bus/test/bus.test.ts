import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Registry } from 'prom-client';
import { Health, identityV1 } from '@runnerhub/contracts';
import { startNats, type NatsServer } from '@runnerhub/infra';
import { Bus, BusError, createClient, discoverServices, ensureStreams, implement, serveService, STREAMS } from '@runnerhub/bus';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
let nats: NatsServer;
let natsDir: string;
let server: Bus;
let client: Bus;

beforeAll(async () => {
  natsDir = mkdtempSync(join(tmpdir(), 'rh-bus-'));
  nats = await startNats({ dataDir: natsDir });
  server = await Bus.connect({ servers: nats.url, name: 'test-server', logger: quiet, registry: new Registry() });
  client = await Bus.connect({ servers: nats.url, name: 'test-client', logger: quiet, registry: new Registry(), requestTimeoutMs: 1_000 });
  await serveService(server, { name: 'identity', version: '1.2.3', description: 'test' }, [
    implement(identityV1.Auth, {
      async register(request) {
        if (request.email === 'taken@example.com') throw new BusError('RESOURCE_CONFLICT', 'email already registered', '', 'email');
        return { user: { uid: 'u-1', email: request.email, fullName: request.fullName } };
      },
      async login(request) {
        if (request.identifier === 'crash') throw new Error('database exploded');
        if (request.identifier === 'slow') await new Promise((r) => setTimeout(r, 1_500));
        return { accessToken: `token-for-${request.identifier}`, expiresIn: 3600 };
      },
    }),
    implement(Health, { async check() { return { service: 'identity', status: 'healthy' }; } }, 'identity'),
  ]);
});

afterAll(async () => {
  await client?.drain();
  await server?.drain();
  await nats?.stop();
  rmSync(natsDir, { recursive: true, force: true });
});

test('a typed request reaches its subject and the typed reply comes back', async () => {
  const auth = createClient(client, identityV1.Auth);
  const reply = await auth.login({ identifier: 'alice', password: 'x' });
  expect(reply.accessToken).toBe('token-for-alice');
  expect(reply.expiresIn).toBe(3600);
  const registered = await auth.register({ email: 'a@example.com', fullName: 'A' });
  expect(registered.user?.fullName).toBe('A');
});

test('an answered request builds no RequestError (the patch of @nats-io/nats-core in patches/ is applied)', async () => {
  // request.js reads RequestError from this module object at each use; a counting subclass sees every one built.
  const core = realpathSync(join(dirname(new URL(import.meta.url).pathname), '../node_modules/@nats-io/nats-core'));
  const errors = createRequire(join(core, 'package.json'))('./lib/errors.js') as { RequestError: new (...args: unknown[]) => Error };
  const original = errors.RequestError;
  let built = 0;
  errors.RequestError = class extends original {
    constructor(...args: unknown[]) {
      super(...args);
      built++;
    }
  };
  try {
    const auth = createClient(client, identityV1.Auth);
    for (let i = 0; i < 5; i++) await auth.login({ identifier: `user-${i}`, password: 'x' });
    expect(built).toBe(0);
    await expect(auth.login({ identifier: 'slow', password: 'x' })).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
  } finally {
    errors.RequestError = original;
  }
});

test('a shared contract is served under the owning service subject', async () => {
  const reply = await client.nc.request('identity.v1.health.check', new Uint8Array());
  expect(reply.headers?.hasError ?? false).toBe(false);
  const health = await createClient(client, Health, 'identity').check({});
  expect(health.status).toBe('healthy');
});

test('a typed error travels in the service error headers and keeps its code, message and field', async () => {
  const auth = createClient(client, identityV1.Auth);
  const error = await auth.register({ email: 'taken@example.com' }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(BusError);
  expect(error).toMatchObject({ code: 'RESOURCE_CONFLICT', status: 409, message: 'email already registered', field: 'email' });
  const raw = await client.nc.request('identity.v1.auth.register', new Uint8Array([0x12, 0x11, ...Buffer.from('taken@example.com')]));
  expect(raw.headers?.get('Nats-Service-Error')).toBe('RESOURCE_CONFLICT');
  expect(raw.headers?.get('Nats-Service-Error-Code')).toBe('409');
});

test('an unexpected handler failure becomes INTERNAL_ERROR without leaking its message', async () => {
  const error = await createClient(client, identityV1.Auth).login({ identifier: 'crash' }).catch((e: unknown) => e);
  expect(error).toMatchObject({ code: 'INTERNAL_ERROR', status: 500, message: 'internal error' });
});

test('a malformed request body is a VALIDATION_ERROR', async () => {
  const raw = await client.nc.request('identity.v1.auth.login', new Uint8Array([0xff, 0xff, 0xff]));
  expect(raw.headers?.get('Nats-Service-Error')).toBe('VALIDATION_ERROR');
});

test('a call that outlives its timeout fails as SERVICE_UNAVAILABLE', async () => {
  const error = await createClient(client, identityV1.Auth).login({ identifier: 'slow' }, { timeoutMs: 200 }).catch((e: unknown) => e);
  expect(error).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
  expect((error as Error).message).toMatch(/within 200 ms/);
});

test('a subject nobody serves fails fast as SERVICE_UNAVAILABLE', async () => {
  const started = Date.now();
  const error = await createClient(client, Health, 'nobody').check({}).catch((e: unknown) => e);
  expect(error).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
  expect(Date.now() - started).toBeLessThan(900);
});

test('requests are counted per subject and outcome', async () => {
  await createClient(client, identityV1.Auth).login({ identifier: 'counted' });
  const metrics = await client.registry.getSingleMetricAsString('runnerhub_bus_requests_total');
  expect(metrics).toMatch(/subject="identity.v1.auth.login",outcome="ok",role="client"} [1-9]/);
});

test('service discovery finds the service with its version and endpoints', async () => {
  const services = await discoverServices(client, 300);
  const identity = services.find((s) => s.name === 'identity');
  expect(identity?.version).toBe('1.2.3');
  expect(identity?.endpoints.map((e) => e.subject)).toEqual(
    expect.arrayContaining(['identity.v1.auth.login', 'identity.v1.auth.register', 'identity.v1.health.check']),
  );
});

test('stream set-up is idempotent and creates JOBS as a work queue', async () => {
  await ensureStreams(client);
  await Promise.all([ensureStreams(client), ensureStreams(server)]);
  const jsm = await client.jetstreamManager();
  const jobs = await jsm.streams.info('JOBS');
  expect(jobs.config.retention).toBe(STREAMS.JOBS.retention);
  expect((await jsm.streams.info('LOGS')).config.subjects).toEqual(['logs.>']);
  expect((await jsm.streams.info('EVENTS')).config.subjects).toEqual(['events.>']);
});
