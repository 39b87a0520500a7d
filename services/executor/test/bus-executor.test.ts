import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import type { Subscription } from '@nats-io/nats-core';
import { Bus, BusError, createClient, publishEvent, serveService, type ServedService } from '@runnerhub/bus';
import { executorV1, inventoryV1 } from '@runnerhub/contracts';
import { deployMigrations } from '@runnerhub/db-migrate';
import { startNats, startThrowawayPostgres, type NatsServer, type ThrowawayPostgres } from '@runnerhub/infra';
import { createMetricsRegistry } from '@runnerhub/observability';
import { SecretBox, x25519KeyPair } from '@runnerhub/secrets';
import { createDatabase, type InventoryDb } from '../../inventory/src/adapters/database.js';
import { serverChangedPublisher } from '../../inventory/src/adapters/events.js';
import { Credentials } from '../../inventory/src/domain/credentials.js';
import { Servers } from '../../inventory/src/domain/servers.js';
import { serversHandlers } from '../../inventory/src/handlers/servers.js';
import { InventoryCredentials, InventoryHostKeys } from '../src/adapters/inventory.js';
import { JobExecutor, type JobExecutorOptions } from '../src/adapters/job-consumer.js';
import { SshPool } from '../src/adapters/ssh-pool.js';
import { HostBreakers } from '../src/domain/breaker.js';
import { CommandRunner } from '../src/domain/run-command.js';
import { remoteProcesses, startTestFleet, TEST_PASSWORD, TEST_USER, type TestFleet } from './fleet.js';

const { JobDispatchSchema, JobStatus, JobStatusChangedSchema, OutputChunkSchema, OutputStream, ExecutorHeartbeatSchema, JobCancelRequestedSchema } = executorV1;
type JobStatusChanged = executorV1.JobStatusChanged;
type OutputChunk = executorV1.OutputChunk;

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const loud = { debug() {}, info() {}, warn: (o: object, m?: string) => console.warn(m, o), error: (o: object, m?: string) => console.error(m, o) };
const ACK_WAIT_MS = 1_500;
let dataDir: string;
let nats: NatsServer;
let postgres: ThrowawayPostgres;
let fleet: TestFleet;
let db: InventoryDb;
let pgPool: { end(): Promise<void> };
let servers: Servers;
let inventoryBus: Bus;
let inventory: ServedService;
let bus: Bus;
const orgA = randomUUID();
const orgB = randomUUID();
const serverUids: string[] = [];
const stops: (() => Promise<unknown>)[] = [];

async function connect(name: string): Promise<Bus> {
  return Bus.connect({ servers: nats.url, name, logger: silent, registry: createMetricsRegistry(`${name}-${randomUUID().slice(0, 8)}`) });
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'rh-exec-bus-'));
  [nats, postgres, fleet] = await Promise.all([startNats({ dataDir }), startThrowawayPostgres(), startTestFleet(3, { firstAddress: 61 })]);
  const url = await postgres.freshDatabase('inventory');
  await deployMigrations({ schemaPath: join(new URL('.', import.meta.url).pathname, '../../inventory/prisma/schema.prisma'), databaseUrl: url });
  ({ db, pool: pgPool } = createDatabase({ url, poolSize: 5, timeoutMs: 5_000 }));
  // Changes are announced on the inventory connection, made just below.
  servers = new Servers(db, new Credentials(new SecretBox('t', { t: Buffer.alloc(32, 7).toString('base64') })), (...change) => serverChangedPublisher(inventoryBus)(...change));
  for (const [index, server] of fleet.servers.entries()) {
    const record = await servers.create(orgA, { name: `s${index}`, hostname: server.host, port: server.port, username: TEST_USER, authType: 'password', password: TEST_PASSWORD, privateKey: '', description: '', tags: [], status: '', nodeType: '' });
    serverUids.push(record.id);
  }
  inventoryBus = await connect('inventory');
  const noUsers = { organizationOf: async () => { throw new BusError('PERMISSION_DENIED', 'no users in this test'); } };
  inventory = await serveService(inventoryBus, { name: 'inventory', version: '0.0.0', description: 'test' }, [serversHandlers(servers, noUsers)]);
  bus = await connect('test');
}, 120_000);

// One test's executors never take the next test's dispatches.
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
});

afterAll(async () => {
  for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
  await inventory?.stop();
  await inventoryBus?.drain();
  await bus?.drain();
  await db?.$disconnect();
  await pgPool?.end();
  await Promise.allSettled([nats?.stop(), postgres?.dispose(), fleet?.stop()]);
  rmSync(dataDir, { recursive: true, force: true });
});

interface StartedExecutor {
  executor: JobExecutor;
  bus: Bus;
  pool: SshPool;
  /** As if the process was killed: no more publishes or acks, connections gone. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

async function startExecutor(options: Partial<JobExecutorOptions> = {}): Promise<StartedExecutor> {
  const executorBus = await connect('executor');
  const hostKeys = new InventoryHostKeys(executorBus);
  const pool = new SshPool({ verifyHostKey: hostKeys.verify });
  const breakers = new HostBreakers();
  const executor = new JobExecutor(
    executorBus,
    new CommandRunner(pool, breakers, { killGraceMs: 500, closeGraceMs: 500 }),
    new InventoryCredentials(executorBus),
    { executorId: `exec-${randomUUID().slice(0, 8)}`, concurrency: 50, heartbeatMs: 200, ackWaitMs: ACK_WAIT_MS, maxAckPending: 1_000, shutdownGraceMs: 2_000, fetchExpiresMs: 1_000, ...options },
    loud,
    (server) => hostKeys.lastSeen(server),
  );
  await executor.start();
  let done = false;
  const stop = async () => {
    if (done) return;
    done = true;
    await executor.stop();
    breakers.shutdown();
    await pool.close();
    await executorBus.drain();
  };
  const kill = async () => {
    done = true;
    executor.abandon();
    await executorBus.nc.close();
    breakers.shutdown();
    await pool.close();
  };
  stops.push(stop);
  return { executor, bus: executorBus, pool, kill, stop };
}

type DispatchInit = MessageInitShape<typeof JobDispatchSchema>;

async function dispatch(serverIndex: number, command: string, extra: Partial<DispatchInit> = {}): Promise<string> {
  const jobId = randomUUID();
  const serverUid = serverUids[serverIndex]!;
  const message = create(JobDispatchSchema, {
    jobId,
    organizationUid: orgA,
    attempt: 1,
    target: { serverId: serverUid, credentialId: serverUid },
    work: { case: 'command', value: { command } },
    timeoutMs: 30_000,
    acceptedAt: timestampNow(),
    ...extra,
  });
  await bus.jetstream().publish(`jobs.ssh.${serverUid}`, toBinary(JobDispatchSchema, message), { msgID: `${jobId}.${message.attempt}` });
  return jobId;
}

/** Every status of a job as it is published (core subscription, live). */
function watchStatuses(jobId: string): { statuses: JobStatusChanged[]; sub: Subscription } {
  const statuses: JobStatusChanged[] = [];
  const sub = bus.nc.subscribe(`events.job.${jobId}.status`, { callback: (_, msg) => statuses.push(fromBinary(JobStatusChangedSchema, msg.data)) });
  return { statuses, sub };
}

async function lastStored(jobId: string): Promise<JobStatusChanged | undefined> {
  const jsm = await bus.jetstreamManager();
  const stored = await jsm.streams.getMessage('EVENTS', { last_by_subj: `events.job.${jobId}.status` }).catch(() => null);
  return stored ? fromBinary(JobStatusChangedSchema, stored.data) : undefined;
}

const TERMINAL = new Set([JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.TIMED_OUT]);

async function finalOf(jobId: string, timeoutMs = 20_000): Promise<JobStatusChanged> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await lastStored(jobId);
    if (status && TERMINAL.has(status.status)) return status;
    await sleep(50);
  }
  throw new Error(`job ${jobId} did not finish within ${timeoutMs} ms (last: ${JSON.stringify((await lastStored(jobId))?.status)})`);
}

async function untilStatus(jobId: string, status: number, timeoutMs = 10_000): Promise<JobStatusChanged> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const last = await lastStored(jobId);
    if (last?.status === status) return last;
    await sleep(25);
  }
  throw new Error(`job ${jobId} never reached status ${status}`);
}

/** The job's chunks as LOGS stores them, in stream order. */
async function logsOf(jobId: string): Promise<OutputChunk[]> {
  const consumer = await bus.jetstream().consumers.get('LOGS');
  const chunks: OutputChunk[] = [];
  const info = await consumer.info(true);
  if (info.num_pending === 0) return chunks;
  const messages = await consumer.fetch({ max_messages: 100_000, expires: 2_000 });
  for await (const msg of messages) {
    if (msg.subject.startsWith(`logs.${jobId}.`)) chunks.push(fromBinary(OutputChunkSchema, msg.data));
    if (msg.info.pending === 0) break;
  }
  return chunks;
}

function text(chunks: OutputChunk[], stream?: number): string {
  return chunks
    .filter((chunk) => stream === undefined || chunk.stream === stream)
    .map((chunk) => Buffer.from(chunk.data).toString())
    .join('');
}

test('a dispatch runs on a real sshd: RUNNING, ordered chunks in LOGS, final status in EVENTS, host key recorded in inventory', async () => {
  const { executor } = await startExecutor({ executorId: 'exec-main' });
  const jobId = randomUUID();
  const { statuses, sub } = watchStatuses(jobId);
  await dispatch(0, 'echo out1; sleep 0.1; echo err1 >&2; sleep 0.1; echo out2; exit 0', { jobId });
  const final = await finalOf(jobId);
  sub.unsubscribe();
  expect(final).toMatchObject({ status: JobStatus.COMPLETED, reasonCode: '', exitCode: 0, executorId: 'exec-main', attempt: 1, organizationUid: orgA, run: 1 });
  expect(final.hostKeyFingerprint).toBe(fleet.servers[0]!.hostKeyFingerprint);
  expect(statuses.map((status) => status.status)).toEqual([JobStatus.RUNNING, JobStatus.COMPLETED]);
  expect(statuses[0]!.startedAt).toBeDefined();

  const chunks = await logsOf(jobId);
  expect(chunks.map((chunk) => Number(chunk.seq))).toEqual(chunks.map((_, index) => index));
  expect(text(chunks)).toBe('out1\nerr1\nout2\n');
  expect(text(chunks, OutputStream.STDOUT)).toBe('out1\nout2\n');
  expect(text(chunks, OutputStream.STDERR)).toBe('err1\n');
  expect(final.outputChunks).toBe(BigInt(chunks.length));
  expect(final.outputBytes).toBe(BigInt('out1\nerr1\nout2\n'.length));

  // Trust on first use, persisted by inventory (it survives executor restarts).
  const record = await servers.get(orgA, { uid: serverUids[0]! });
  expect(record.hostKeyFingerprint).toBe(fleet.servers[0]!.hostKeyFingerprint);

  // A non-zero exit is FAILED with its exit code.
  const failed = await finalOf(await dispatch(0, 'echo bad >&2; exit 3'));
  expect(failed).toMatchObject({ status: JobStatus.FAILED, reasonCode: 'exit_code', exitCode: 3 });
  expect(executor.running()).toEqual([]);
});

test('a host key other than the recorded one fails the job with HOST_KEY_CHANGED', async () => {
  await startExecutor();
  const bogus = `SHA256:${Buffer.alloc(32, 1).toString('base64').replace(/=+$/, '')}`;
  await servers.recordHostKey(orgA, serverUids[1]!, bogus);
  const final = await finalOf(await dispatch(1, 'echo never'));
  expect(final).toMatchObject({ status: JobStatus.FAILED, reasonCode: 'HOST_KEY_CHANGED' });
  expect(final.reason).toContain(`${bogus} is recorded, the server offered ${fleet.servers[1]!.hostKeyFingerprint}`);
  expect(final.exitCode).toBeUndefined();
});

test('a cancel event kills the remote process; heartbeats carry the running job', async () => {
  const { executor } = await startExecutor({ executorId: 'exec-cancel' });
  const beats: executorV1.ExecutorHeartbeat[] = [];
  const sub = bus.nc.subscribe('executor.v1.heartbeat.exec-cancel', { callback: (_, msg) => beats.push(fromBinary(ExecutorHeartbeatSchema, msg.data)) });
  const jobId = await dispatch(2, 'echo started; sleep 31; echo never');
  await untilStatus(jobId, JobStatus.RUNNING);
  await sleep(600);
  expect(executor.running()).toEqual([{ jobId, attempt: 1 }]);
  expect(beats.some((beat) => beat.running.some((job) => job.jobId === jobId && job.attempt === 1))).toBe(true);
  // The login shell running the command line shows `sleep 31` too.
  expect((await remoteProcesses(fleet.servers[2]!, 'sleep 31')).filter((line) => line.endsWith(' sleep 31'))).toHaveLength(1);

  publishEvent(bus, `events.job.${jobId}.cancel`, JobCancelRequestedSchema, { jobId, organizationUid: orgA, requestedByUid: 'someone', at: timestampNow() });
  const final = await finalOf(jobId);
  expect(final).toMatchObject({ status: JobStatus.CANCELED, reasonCode: 'canceled', cleanupVerified: true });
  expect(await remoteProcesses(fleet.servers[2]!, 'sleep 31')).toEqual([]);
  expect(text(await logsOf(jobId))).toBe('started\n');
  await sleep(400);
  expect(beats.at(-1)!.running).toEqual([]);
  sub.unsubscribe();
});

test('a dispatch redelivered after its executor was killed mid-job: executor_lost unless safe_to_retry, then it runs again', async () => {
  for (const { safeToRetry, expected } of [
    { safeToRetry: false, expected: { status: JobStatus.FAILED, reasonCode: 'executor_lost' } },
    { safeToRetry: true, expected: { status: JobStatus.COMPLETED, reasonCode: '', run: 2 } },
  ]) {
    const first = await startExecutor({ executorId: 'exec-doomed' });
    const jobId = await dispatch(0, 'echo begin; sleep 1.5; echo end', { safeToRetry });
    await untilStatus(jobId, JobStatus.RUNNING);
    await first.kill();
    // Nothing else runs until the dispatch is redelivered to a new executor after the ack wait.
    const second = await startExecutor({ executorId: 'exec-survivor' });
    const final = await finalOf(jobId, 20_000);
    expect(final).toMatchObject({ ...expected, executorId: 'exec-survivor' });
    if (safeToRetry) {
      const rerun = (await logsOf(jobId)).filter((chunk) => chunk.run === 2);
      expect(text(rerun)).toBe('begin\nend\n');
      expect(rerun.map((chunk) => Number(chunk.seq))).toEqual(rerun.map((_, index) => index));
    } else {
      expect(final.reason).toContain('exec-doomed');
    }
    await second.stop();
  }
  // Acknowledged: nothing of either is left in JOBS.
  const jsm = await bus.jetstreamManager();
  expect((await jsm.consumers.info('JOBS', 'executor')).num_ack_pending).toBe(0);
});

test('stopping lets short jobs finish, then ends a long one FAILED executor_shutdown (a safe_to_retry one goes back to JOBS)', async () => {
  const started = await startExecutor({ executorId: 'exec-stopping', shutdownGraceMs: 1_000 });
  const short = await dispatch(0, 'sleep 0.3; echo short');
  const long = await dispatch(0, 'sleep 32'); // server 1 has a wrong key recorded by now
  const retryable = await dispatch(2, 'sleep 33', { safeToRetry: true });
  await Promise.all([untilStatus(short, JobStatus.RUNNING), untilStatus(long, JobStatus.RUNNING), untilStatus(retryable, JobStatus.RUNNING)]);
  await started.stop();
  expect(await finalOf(short)).toMatchObject({ status: JobStatus.COMPLETED });
  expect(await finalOf(long)).toMatchObject({ status: JobStatus.FAILED, reasonCode: 'executor_shutdown', cleanupVerified: true });
  expect(await remoteProcesses(fleet.servers[0]!, 'sleep 32')).toEqual([]);
  // Handed back: the next executor runs it again from the start.
  expect((await lastStored(retryable))?.status).toBe(JobStatus.RUNNING);
  await startExecutor({ executorId: 'exec-next' });
  const deadline = Date.now() + 10_000;
  while ((await lastStored(retryable))?.executorId !== 'exec-next' && Date.now() < deadline) await sleep(50);
  expect(await lastStored(retryable)).toMatchObject({ status: JobStatus.RUNNING, executorId: 'exec-next', run: 2 });
  publishEvent(bus, `events.job.${retryable}.cancel`, JobCancelRequestedSchema, { jobId: retryable, organizationUid: orgA, at: timestampNow() });
  expect(await finalOf(retryable)).toMatchObject({ status: JobStatus.CANCELED, run: 2 });
});

test('a cached login is reused, and dropped as soon as inventory announces that its server changed', async () => {
  const record = await servers.create(orgA, { name: 'cached-login', hostname: '127.0.0.1', port: 22, username: TEST_USER, authType: 'password', password: 'first-password', privateKey: '', description: '', tags: [], status: '', nodeType: '' });
  const resolver = new InventoryCredentials(bus, 60_000);
  const dispatchFor = (jobId: string) => create(JobDispatchSchema, { jobId, organizationUid: orgA, attempt: 1, target: { serverId: record.id, credentialId: record.id } });
  expect((await resolver.targetFor(dispatchFor('c1'))).credentials).toEqual({ password: 'first-password' });
  await servers.update(orgA, { uid: record.id }, { password: 'second-password' });
  const deadline = Date.now() + 5_000;
  let password = '';
  while (Date.now() < deadline && password !== 'second-password') {
    password = ((await resolver.targetFor(dispatchFor('c2'))).credentials as { password: string }).password;
    await sleep(20);
  }
  expect(password).toBe('second-password');
});

test('inventory resolves credentials only for a server of the named organisation, sealed to the requester key', async () => {
  const client = createClient(bus, inventoryV1.Servers);
  const resolver = new InventoryCredentials(bus);
  const target = await resolver.targetFor(create(JobDispatchSchema, { jobId: 'j1', organizationUid: orgA, attempt: 1, target: { serverId: serverUids[0]!, credentialId: serverUids[0]! } }));
  expect(target).toMatchObject({ host: fleet.servers[0]!.host, port: fleet.servers[0]!.port, username: TEST_USER, credentials: { password: TEST_PASSWORD } });

  const key = Buffer.alloc(32, 9);
  const foreign = await client.resolveCredentials({ jobId: 'j1', organizationUid: orgB, serverUid: serverUids[0]!, replyPublicKey: key }).catch((e: unknown) => e);
  expect(foreign).toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
  const noKey = await client.resolveCredentials({ jobId: 'j1', organizationUid: orgA, serverUid: serverUids[0]! }).catch((e: unknown) => e);
  expect(noKey).toMatchObject({ code: 'VALIDATION_ERROR', field: 'reply_public_key' });

  // The reply carries no secret in clear.
  const raw = await bus.nc.request('inventory.v1.servers.resolve_credentials', toBinary(inventoryV1.ResolveCredentialsRequestSchema, create(inventoryV1.ResolveCredentialsRequestSchema, { jobId: 'j2', organizationUid: orgA, serverUid: serverUids[0]!, replyPublicKey: x25519KeyPair().publicKey })));
  expect(Buffer.from(raw.data).includes(Buffer.from(TEST_PASSWORD))).toBe(false);

  // Host keys: first use records, the same again is fine, another is a conflict; other organisations see nothing.
  const fingerprint = (n: number) => `SHA256:${Buffer.alloc(32, n).toString('base64').replace(/=+$/, '')}`;
  const server2 = serverUids[2]!;
  const recorded = await client.recordHostKey({ organizationUid: orgB, serverUid: server2, fingerprint: fingerprint(5) }).catch((e: unknown) => e);
  expect(recorded).toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
  const current = (await servers.get(orgA, { uid: server2 })).hostKeyFingerprint!;
  expect(await client.recordHostKey({ organizationUid: orgA, serverUid: server2, fingerprint: current })).toMatchObject({ hostKeyFingerprint: current, recorded: false });
  const changed = await client.recordHostKey({ organizationUid: orgA, serverUid: server2, fingerprint: fingerprint(6) }).catch((e: unknown) => e);
  expect(changed).toMatchObject({ code: 'RESOURCE_CONFLICT', details: 'HOST_KEY_CHANGED' });
});
