import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Bus, createClient, ensureStreams, serveService, STREAMS, type ServedService } from '@runnerhub/bus';
import { executorV1, schedulerV1 } from '@runnerhub/contracts';
import { deployMigrations } from '@runnerhub/db-migrate';
import { startNats, startThrowawayPostgres, type NatsServer, type ThrowawayPostgres } from '@runnerhub/infra';
import { createMetricsRegistry } from '@runnerhub/observability';
import type pg from 'pg';
import { createDatabase, type SchedulerDb } from '../src/adapters/database.js';
import { dispatchMsgId, dispatchOf, dispatchSubject, Dispatcher, type DispatcherOptions } from '../src/adapters/dispatcher.js';
import { Followers, STATUS_CONSUMER } from '../src/adapters/followers.js';
import type { TargetServer } from '../src/domain/access.js';
import { Lifecycle } from '../src/domain/lifecycle.js';
import { Tasks, type TaskInput, type TaskRecord } from '../src/domain/tasks.js';
import { taskHandlers } from '../src/handlers/tasks.js';

const quiet = { debug() {}, info() {}, warn() {}, error(o: object) { if (process.env.DEBUG_TEST) console.error(o); } };
const LOST_MS = 1_500;
const ORG = randomUUID();
const USER = randomUUID();
const caller = { userUid: USER, organizationUid: ORG, username: 'tester' };

let postgres: ThrowawayPostgres;
let natsDir: string;
let nats: NatsServer;
let db: SchedulerDb;
let pool: pg.Pool;
let bus: Bus;
let tasks: Tasks;
let lifecycle: Lifecycle;
let followers: Followers;
let served: ServedService;
const dispatchers: Dispatcher[] = [];
const servers = new Map<string, TargetServer>();

function server(maxSessions = 0): TargetServer {
  const uid = randomUUID();
  const target = { uid, name: `srv-${uid.slice(0, 6)}`, hostname: '127.0.0.1', port: 22, username: 'nobody', hostKeyFingerprint: '', maxSessions };
  servers.set(uid, target);
  return target;
}

function submit(target: TargetServer, overrides: Partial<TaskInput> = {}): Promise<TaskRecord> {
  return tasks.submit(ORG, USER, target, { kind: 'command', command: 'echo', args: [], argsText: 'hello', script: '', shell: '', env: {}, timeoutSeconds: 60, priority: 5, safeToRetry: false, ...overrides });
}

function dispatcher(options: Partial<DispatcherOptions> = {}): Dispatcher {
  const d = new Dispatcher(pool, bus, quiet, { maxConcurrent: 100, perServerConcurrency: 10, intervalMs: 50, batch: 100, endedUnwritten: () => followers.endedUnwritten(), ...options });
  dispatchers.push(d);
  return d;
}

async function stopDispatchers(): Promise<void> {
  await Promise.all(dispatchers.splice(0).map((d) => d.stop()));
}

async function report(jobId: string, attempt: number, status: executorV1.JobStatus, extra: Partial<MessageInitShape<typeof executorV1.JobStatusChangedSchema>> = {}, msgID = `${jobId}.${attempt}.${status}.${randomUUID()}`): Promise<void> {
  const event = create(executorV1.JobStatusChangedSchema, { jobId, organizationUid: ORG, attempt, status, executorId: 'fake-1', ...extra });
  await bus.jetstream().publish(`events.job.${jobId}.status`, toBinary(executorV1.JobStatusChangedSchema, event), { msgID });
}

function heartbeat(executorId: string, running: Array<{ jobId: string; attempt: number }> = []): void {
  bus.nc.publish(`executor.v1.heartbeat.${executorId}`, toBinary(executorV1.ExecutorHeartbeatSchema, create(executorV1.ExecutorHeartbeatSchema, { executorId, running, at: timestampFromDate(new Date()) })));
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const task = (id: string) => db.task.findUniqueOrThrow({ where: { id } });

/** The status consumer has applied everything published so far. */
async function statusDrained(): Promise<void> {
  const jsm = await bus.jetstreamManager();
  await eventually('the status consumer to catch up', async () => {
    const info = await jsm.consumers.info(STREAMS.EVENTS.name, STATUS_CONSUMER);
    return info.num_pending === 0 && info.num_ack_pending === 0;
  });
}

/** Plays the executor's part: takes dispatches from JOBS as a real executor would, and does what the test says. */
interface FakeExecutor {
  received: executorV1.JobDispatch[];
  stop(): Promise<void>;
}

async function fakeExecutor(handle: (dispatch: executorV1.JobDispatch) => Promise<void>): Promise<FakeExecutor> {
  const jsm = await bus.jetstreamManager();
  await jsm.consumers.add(STREAMS.JOBS.name, { durable_name: 'fake-executor', filter_subject: 'jobs.ssh.>', ack_policy: 'explicit' as never, ack_wait: 30_000_000_000, max_ack_pending: 1000 }).catch(() => undefined);
  const consumer = await bus.jetstream().consumers.get(STREAMS.JOBS.name, 'fake-executor');
  const messages = await consumer.consume({ max_messages: 100 });
  const received: executorV1.JobDispatch[] = [];
  const inFlight = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const msg of messages) {
      const dispatch = fromBinary(executorV1.JobDispatchSchema, msg.data);
      received.push(dispatch);
      const work = handle(dispatch).then(() => msg.ack(), () => msg.ack());
      inFlight.add(work);
      void work.finally(() => inFlight.delete(work));
    }
  })();
  return {
    received,
    async stop() {
      messages.stop();
      await loop;
      await Promise.all(inFlight);
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the job like a healthy executor: running, then completed after holdMs. */
async function runToCompletion(dispatch: executorV1.JobDispatch, holdMs = 0, executorId = 'fake-1'): Promise<void> {
  await report(dispatch.jobId, dispatch.attempt, executorV1.JobStatus.RUNNING, { executorId, startedAt: timestampFromDate(new Date()) }, `${dispatch.jobId}.${dispatch.attempt}.running`);
  if (holdMs) await sleep(holdMs);
  await report(dispatch.jobId, dispatch.attempt, executorV1.JobStatus.COMPLETED, { executorId, exitCode: 0, endedAt: timestampFromDate(new Date()) }, `${dispatch.jobId}.${dispatch.attempt}.completed`);
}

let beats: NodeJS.Timeout;
const RUNNING_DELAY_MS = 300;

beforeAll(async () => {
  postgres = await startThrowawayPostgres();
  const url = await postgres.freshDatabase('scheduler');
  await deployMigrations({ schemaPath: join(new URL('.', import.meta.url).pathname, '../prisma/schema.prisma'), databaseUrl: url });
  ({ db, pool } = createDatabase({ url, poolSize: 10, timeoutMs: 5_000 }));
  natsDir = mkdtempSync(join(tmpdir(), 'rh-scheduler-'));
  nats = await startNats({ dataDir: natsDir });
  bus = await Bus.connect({ servers: nats.url, name: 'scheduler-test', logger: quiet, registry: createMetricsRegistry('scheduler-test') });
  await ensureStreams(bus);
  tasks = new Tasks(db, pool);
  lifecycle = new Lifecycle(pool);
  followers = new Followers(bus, lifecycle, quiet, { executorLostMs: LOST_MS, retryDelayMs: 100, runningDelayMs: RUNNING_DELAY_MS }, () => dispatchers.forEach((d) => d.poke()));
  followers.start();
  // The healthy fake executor keeps saying it is alive.
  beats = setInterval(() => heartbeat('fake-1'), 200);
  served = await serveService(bus, { name: 'scheduler', version: '0.0.0', description: 'test' }, [
    taskHandlers({
      bus,
      logger: quiet,
      tasks,
      lifecycle,
      // Identity and inventory are not under test here: the caller is an operator of ORG and every server exists.
      access: { organizationOf: async () => ORG },
      servers: { serverOf: async (_caller, _org, uid) => servers.get(uid) ?? server() },
      accepted: (serverUid) => dispatchers.forEach((d) => d.accepted(serverUid)),
      activeExecutors: () => followers.activeExecutors(),
      totalCapacity: 100,
    }),
  ]);
}, 90_000);

afterAll(async () => {
  clearInterval(beats);
  await stopDispatchers();
  await served?.stop();
  await followers?.stop();
  await bus?.drain();
  await nats?.stop();
  await db?.$disconnect();
  await pool?.end();
  await postgres?.dispose();
  if (natsDir) rmSync(natsDir, { recursive: true, force: true });
});

afterEach(async () => {
  await stopDispatchers();
});

describe('storing', () => {
  test('tasks submitted at once are stored together, in order, exactly as Prisma reads them back', async () => {
    const target = server();
    const stored = await Promise.all([
      submit(target, { argsText: 'first', env: { GREETING: "it's" } }),
      submit(target, { kind: 'script', script: 'echo two\n', shell: '/bin/sh', priority: 9 }),
      submit(target, { args: ['a b', 'c'], argsText: '', safeToRetry: true }),
    ]);
    const readBack = await Promise.all(stored.map((task) => db.task.findUniqueOrThrow({ where: { id: task.id } })));
    // Nothing here is for the dispatchers of the tests that follow.
    await db.task.updateMany({ where: { id: { in: stored.map((task) => task.id) } }, data: { status: 'canceled' } });
    expect(stored).toEqual(readBack);
    expect(stored.map((task) => task.argsText)).toEqual(['first', '', 'a b c']);
    expect(stored[2]!.args).toEqual(['a b', 'c']);
    expect(stored[0]!.env).toEqual({ GREETING: "it's" });
    expect(stored[0]!.number < stored[1]!.number && stored[1]!.number < stored[2]!.number).toBe(true);
    expect(stored.map((task) => task.status)).toEqual(['queued', 'queued', 'queued']);
  });
});

describe('dispatching', () => {
  test('queued tasks are released in priority order, oldest first within a priority', async () => {
    const target = server();
    const low = await submit(target, { priority: 1 });
    const high = await submit(target, { priority: 9 });
    const middle = await submit(target, { priority: 5 });
    const middleLater = await submit(target, { priority: 5 });
    const executor = await fakeExecutor((d) => runToCompletion(d));
    try {
      // One at a time: each release waits for the previous task to end.
      dispatcher({ maxConcurrent: 1 }).start();
      await eventually('all four to complete', async () => (await db.task.count({ where: { id: { in: [low.id, high.id, middle.id, middleLater.id] }, status: 'completed' } })) === 4);
      expect(executor.received.map((d) => d.jobId)).toEqual([high.id, middle.id, middleLater.id, low.id]);
      expect(executor.received.map((d) => d.priority)).toEqual([9, 5, 5, 1]);
    } finally {
      await executor.stop();
    }
  });

  test("30 tasks on 3 servers never run more than each server's limit at once (its max_sessions, else the default), and every one runs once", async () => {
    const [a, b, c] = [server(), server(), server(5)];
    const submitted = await Promise.all(Array.from({ length: 30 }, (_, i) => submit([a, b, c][i % 3]!, { priority: i % 10 })));
    const running = new Map<string, number>();
    const most = new Map<string, number>();
    const executor = await fakeExecutor(async (d) => {
      const serverId = d.target!.serverId;
      running.set(serverId, (running.get(serverId) ?? 0) + 1);
      most.set(serverId, Math.max(most.get(serverId) ?? 0, running.get(serverId)!));
      await report(d.jobId, d.attempt, executorV1.JobStatus.RUNNING, { startedAt: timestampFromDate(new Date()) });
      await sleep(150);
      running.set(serverId, running.get(serverId)! - 1);
      await report(d.jobId, d.attempt, executorV1.JobStatus.COMPLETED, { exitCode: 0 });
    });
    try {
      dispatcher({ perServerConcurrency: 3, maxConcurrent: 100 }).start();
      await eventually('all 30 to complete', async () => (await db.task.count({ where: { id: { in: submitted.map((t) => t.id) }, status: 'completed' } })) === 30, 30_000);
      expect(most.get(a.uid)).toBe(3);
      expect(most.get(b.uid)).toBe(3);
      expect(most.get(c.uid)).toBe(5);
      expect(executor.received).toHaveLength(30);
      expect(new Set(executor.received.map((d) => d.jobId)).size).toBe(30);
      // The executor opens no more channels per connection than the server allows.
      expect(new Set(executor.received.filter((d) => d.target!.serverId === c.uid).map((d) => d.target!.maxSessions))).toEqual(new Set([5]));
    } finally {
      await executor.stop();
    }
  });

  test('a slot is used again as soon as its task is reported ended, before the report is written', async () => {
    const target = server(1);
    const first = await submit(target, { priority: 9 });
    const second = await submit(target, { priority: 1 });
    const executor = await fakeExecutor(async () => {});
    const blocker = await pool.connect();
    try {
      dispatcher().start();
      await eventually('the first task to be dispatched', async () => executor.received.length === 1);
      expect(executor.received[0]!.jobId).toBe(first.id);
      // The first task's row stays locked: its final status cannot be written meanwhile.
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE', [first.id]);
      await report(first.id, 1, executorV1.JobStatus.COMPLETED, { exitCode: 0 });
      await eventually('the second task to be dispatched', async () => executor.received.length === 2, 5_000);
      expect(executor.received[1]!.jobId).toBe(second.id);
      expect(await task(first.id)).toMatchObject({ status: 'queued' });
      await blocker.query('COMMIT');
      await report(second.id, 1, executorV1.JobStatus.COMPLETED, { exitCode: 0 });
      await statusDrained();
      expect(await task(first.id)).toMatchObject({ status: 'completed' });
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      blocker.release();
      await executor.stop();
    }
  });

  test('the global limit holds across servers', async () => {
    const targets = [server(), server(), server()];
    const submitted = await Promise.all(Array.from({ length: 9 }, (_, i) => submit(targets[i % 3]!)));
    let running = 0;
    let most = 0;
    const executor = await fakeExecutor(async (d) => {
      most = Math.max(most, ++running);
      await report(d.jobId, d.attempt, executorV1.JobStatus.RUNNING);
      await sleep(100);
      running--;
      await report(d.jobId, d.attempt, executorV1.JobStatus.COMPLETED, { exitCode: 0 });
    });
    try {
      dispatcher({ perServerConcurrency: 10, maxConcurrent: 2 }).start();
      await eventually('all 9 to complete', async () => (await db.task.count({ where: { id: { in: submitted.map((t) => t.id) }, status: 'completed' } })) === 9, 30_000);
      expect(most).toBe(2);
    } finally {
      await executor.stop();
    }
  });

  test('a dispatcher that published and crashed before recording it does not dispatch again', async () => {
    const target = server();
    const queued = await submit(target);
    // The crashed pass: the dispatch reached JOBS, the database never heard of it.
    const { rows } = await pool.query('SELECT * FROM tasks WHERE id = $1', [queued.id]);
    const first = await bus.jetstream().publish(dispatchSubject(target.uid), toBinary(executorV1.JobDispatchSchema, dispatchOf(rows[0])), { msgID: dispatchMsgId(queued.id, 1) });
    expect(first.duplicate).toBe(false);
    expect(await dispatcher().pass()).toBe(1);
    const jsm = await bus.jetstreamManager();
    const info = await jsm.streams.info(STREAMS.JOBS.name, { subjects_filter: dispatchSubject(target.uid) } as never);
    expect(info.state.subjects?.[dispatchSubject(target.uid)]).toBe(1);
    expect((await task(queued.id)).dispatchSeq).toBe(BigInt(first.seq));
    // Taken by the executor for cleanliness of later tests.
    const executor = await fakeExecutor((d) => runToCompletion(d));
    await eventually('it to complete', async () => (await task(queued.id)).status === 'completed');
    expect(executor.received.filter((d) => d.jobId === queued.id)).toHaveLength(1);
    await executor.stop();
  });

  test('two dispatchers at once, and one restarted midway, release every task exactly once', async () => {
    const targets = [server(), server(), server()];
    const executor = await fakeExecutor((d) => runToCompletion(d, 20));
    try {
      const first = await Promise.all(Array.from({ length: 30 }, (_, i) => submit(targets[i % 3]!, { priority: i % 10 })));
      const a = dispatcher({ perServerConcurrency: 4 });
      const b = dispatcher({ perServerConcurrency: 4 });
      a.start();
      b.start();
      await eventually('some to be released', async () => executor.received.length >= 5);
      await a.stop();
      const second = await Promise.all(Array.from({ length: 10 }, (_, i) => submit(targets[i % 3]!)));
      dispatcher({ perServerConcurrency: 4 }).start();
      const all = [...first, ...second].map((t) => t.id);
      await eventually('all 40 to complete', async () => (await db.task.count({ where: { id: { in: all }, status: 'completed' } })) === 40, 30_000);
      const mine = executor.received.filter((d) => all.includes(d.jobId));
      expect(mine).toHaveLength(40);
      expect(new Set(mine.map((d) => d.jobId)).size).toBe(40);
    } finally {
      await executor.stop();
    }
  });

  test('a dispatch carries the work: the command line with each argument quoted for sh, or the script and its shell', async () => {
    const target = server();
    const command = await submit(target, { command: 'printf "%s\\n" | cat', argsText: `a 'b c' "d \\"e\\"" $(rm -rf ~) ;x` });
    const script = await submit(target, { kind: 'script', command: '', argsText: '', script: 'echo hi', shell: 'python3', env: { GREETING: 'hello' } });
    const executor = await fakeExecutor((d) => runToCompletion(d));
    try {
      dispatcher().start();
      await eventually('both dispatched', async () => executor.received.filter((d) => d.jobId === command.id || d.jobId === script.id).length === 2);
      const byId = new Map(executor.received.map((d) => [d.jobId, d]));
      expect(byId.get(command.id)!.work).toEqual({ case: 'command', value: expect.objectContaining({ command: `printf "%s\\n" | cat a 'b c' 'd "e"' '$(rm' -rf '~)' ';x'` }) });
      expect(byId.get(script.id)!.work).toEqual({ case: 'script', value: expect.objectContaining({ script: 'echo hi', shell: 'python3' }) });
      expect(byId.get(script.id)!.env).toEqual({ GREETING: 'hello' });
      expect(byId.get(command.id)!.target).toMatchObject({ serverId: target.uid, host: '127.0.0.1', port: 22, username: 'nobody', credentialId: target.uid });
      expect(byId.get(command.id)!.timeoutMs).toBe(60_000);
    } finally {
      await executor.stop();
    }
  });
});

describe('following status', () => {
  test('reports are applied once, in any order, and reports of another attempt are ignored', async () => {
    const target = server();
    const done = await submit(target);
    const started = new Date(Date.now() - 5_000);
    const ended = new Date();
    // The final report overtakes the running one; both arrive again later under other ids.
    await report(done.id, 1, executorV1.JobStatus.COMPLETED, { exitCode: 0, startedAt: timestampFromDate(started), endedAt: timestampFromDate(ended), outputChunks: 3n });
    await report(done.id, 1, executorV1.JobStatus.RUNNING, { startedAt: timestampFromDate(new Date()) });
    await report(done.id, 1, executorV1.JobStatus.FAILED, { exitCode: 2, reasonCode: 'exit_code' });
    await report(done.id, 1, executorV1.JobStatus.COMPLETED, { exitCode: 0 });

    const other = await submit(target);
    await report(other.id, 2, executorV1.JobStatus.RUNNING);
    await report(other.id, 0, executorV1.JobStatus.FAILED, { exitCode: 1 });
    await statusDrained();
    expect(await task(done.id)).toMatchObject({ status: 'completed', exitCode: 0, startedAt: started, endedAt: ended, executorId: 'fake-1', outputChunks: 3n });
    expect(await task(other.id)).toMatchObject({ status: 'queued', startedAt: null, exitCode: null });

    await report(other.id, 1, executorV1.JobStatus.RUNNING, { executorId: 'fake-1' });
    await report(other.id, 1, executorV1.JobStatus.RUNNING, { executorId: 'fake-1' });
    await statusDrained();
    expect(await task(other.id)).toMatchObject({ status: 'running', executorId: 'fake-1' });
    await report(other.id, 1, executorV1.JobStatus.TIMED_OUT, { reasonCode: 'timeout', reason: 'ran past 60 s' });
    await statusDrained();
    expect(await task(other.id)).toMatchObject({ status: 'timed_out', reasonCode: 'timeout', exitCode: null });
  });
});

describe('recording RUNNING', () => {
  test('a task that ends within the delay is written once, with its final status; one still running is recorded after the delay', async () => {
    const target = server();
    const quick = await submit(target);
    const reportedStart = new Date(Date.now() - 60_000);
    const finalStart = new Date(Date.now() - 1_000);
    await report(quick.id, 1, executorV1.JobStatus.RUNNING, { startedAt: timestampFromDate(reportedStart) });
    await report(quick.id, 1, executorV1.JobStatus.COMPLETED, { exitCode: 0, startedAt: timestampFromDate(finalStart), endedAt: timestampFromDate(new Date()) });
    await statusDrained();
    // Had RUNNING been written first, its start would have stayed (a final status keeps a recorded start).
    expect(await task(quick.id)).toMatchObject({ status: 'completed', startedAt: finalStart });

    const slow = await submit(target);
    const reportedAt = Date.now();
    await report(slow.id, 1, executorV1.JobStatus.RUNNING, { startedAt: timestampFromDate(new Date()) });
    await sleep(RUNNING_DELAY_MS / 3);
    expect(await task(slow.id)).toMatchObject({ status: 'queued' });
    await statusDrained();
    expect(await task(slow.id)).toMatchObject({ status: 'running', executorId: 'fake-1' });
    expect(Date.now() - reportedAt).toBeGreaterThanOrEqual(RUNNING_DELAY_MS);
  });
});

describe('executor lost', () => {
  test('a running task whose executor stops sending heartbeats fails with executor_lost', async () => {
    const target = server();
    const doomed = await submit(target);
    const failures: executorV1.JobStatusChanged[] = [];
    const sub = bus.nc.subscribe(`events.job.${doomed.id}.status`, { callback: (_e, msg) => failures.push(fromBinary(executorV1.JobStatusChangedSchema, msg.data)) });
    await report(doomed.id, 1, executorV1.JobStatus.RUNNING, { executorId: 'doomed-1' });
    await statusDrained();
    // Alive for longer than the timeout, as long as it keeps sending heartbeats.
    for (let i = 0; i < 12; i++) {
      heartbeat('doomed-1');
      await sleep(200);
    }
    expect((await task(doomed.id)).status).toBe('running');
    const silentSince = Date.now();
    const lost = await eventually('executor_lost', async () => {
      const row = await task(doomed.id);
      return row.status === 'failed' ? row : undefined;
    });
    expect(Date.now() - silentSince).toBeLessThan(LOST_MS + 2_000);
    expect(lost).toMatchObject({ reasonCode: 'executor_lost', attempt: 1, endedAt: expect.any(Date) });
    await eventually('the failed status event', async () => failures.some((e) => e.status === executorV1.JobStatus.FAILED && e.reasonCode === 'executor_lost'));
    sub.unsubscribe();
  });

  test('a task another executor says it runs (a redelivered dispatch) is not lost with the executor that started it', async () => {
    const target = server();
    const moved = await submit(target);
    await report(moved.id, 1, executorV1.JobStatus.RUNNING, { executorId: 'doomed-3' });
    await statusDrained();
    for (let i = 0; i < 12; i++) {
      heartbeat('rescuer', [{ jobId: moved.id, attempt: 1 }]);
      await sleep(200);
    }
    expect((await task(moved.id)).status).toBe('running');
    await eventually('executor_lost once nobody runs it', async () => (await task(moved.id)).status === 'failed');
  });

  test('a RUNNING report of a redelivered dispatch counts as hearing of the task: it is not lost (nor run twice) meanwhile', async () => {
    const target = server();
    const moved = await submit(target, { safeToRetry: true });
    await report(moved.id, 1, executorV1.JobStatus.RUNNING, { executorId: 'doomed-4' });
    await statusDrained();
    await sleep(LOST_MS * 0.8);
    // The redelivered dispatch starts on another executor before that one's first heartbeat.
    await report(moved.id, 1, executorV1.JobStatus.RUNNING, { executorId: 'rescuer-2' });
    await statusDrained();
    await sleep(LOST_MS * 0.6);
    await followers.reap();
    expect(await task(moved.id)).toMatchObject({ status: 'running', attempt: 1 });
    await eventually('lost at last once nobody runs it', async () => (await task(moved.id)).attempt === 2);
  });

  test('a task that is safe to retry runs again as its next attempt, and the lost attempt\'s late reports are ignored', async () => {
    const target = server();
    const retried = await submit(target, { safeToRetry: true });
    const executor = await fakeExecutor(async (d) => {
      if (d.jobId !== retried.id) return runToCompletion(d);
      // The first attempt's executor dies after saying it started; the second runs it to the end.
      if (d.attempt === 1) return report(d.jobId, 1, executorV1.JobStatus.RUNNING, { executorId: 'doomed-2' });
      return runToCompletion(d, 0, 'fake-1');
    });
    try {
      dispatcher().start();
      await eventually('the retry to complete', async () => (await task(retried.id)).status === 'completed');
      const mine = executor.received.filter((d) => d.jobId === retried.id);
      expect(mine.map((d) => d.attempt)).toEqual([1, 2]);
      await report(retried.id, 1, executorV1.JobStatus.FAILED, { executorId: 'doomed-2', exitCode: 137 });
      await statusDrained();
      expect(await task(retried.id)).toMatchObject({ status: 'completed', attempt: 2, exitCode: 0, executorId: 'fake-1' });
    } finally {
      await executor.stop();
    }
  });
});

describe('cancel', () => {
  const client = () => createClient(bus, schedulerV1.Tasks);

  test('a queued task is canceled at once', async () => {
    const target = server();
    const queued = await submit(target);
    const { task: canceled, canceledAt } = await client().cancel({ caller, uid: queued.id });
    expect(canceled).toMatchObject({ status: 'canceled', reasonCode: 'canceled' });
    expect(canceledAt).toBeDefined();
    // Never released afterwards.
    expect(await dispatcher().pass()).toBe(0);
    expect((await task(queued.id)).dispatchedAt).toBeNull();
    await expect(client().cancel({ caller, uid: queued.id })).rejects.toMatchObject({ code: 'RESOURCE_CONFLICT' });
  });

  test('a queued task already in JOBS is withdrawn from it', async () => {
    const target = server();
    const queued = await submit(target);
    expect(await dispatcher().pass()).toBeGreaterThanOrEqual(1);
    const jsm = await bus.jetstreamManager();
    const count = async () => (await jsm.streams.info(STREAMS.JOBS.name, { subjects_filter: dispatchSubject(target.uid) } as never)).state.subjects?.[dispatchSubject(target.uid)] ?? 0;
    expect(await count()).toBe(1);
    const { task: canceled } = await client().cancel({ caller, uid: queued.id });
    expect(canceled?.status).toBe('canceled');
    expect(await count()).toBe(0);
  });

  test('a running task is asked to stop through its executor, and ends with the executor\'s final status', async () => {
    const target = server();
    const executor = await fakeExecutor(async (d) => report(d.jobId, d.attempt, executorV1.JobStatus.RUNNING, { executorId: 'fake-1' }));
    try {
      const running = await submit(target);
      dispatcher().start();
      await eventually('it to run', async () => (await task(running.id)).status === 'running');
      const requests: executorV1.JobCancelRequested[] = [];
      const sub = bus.nc.subscribe(`events.job.${running.id}.cancel`, { callback: (_e, msg) => requests.push(fromBinary(executorV1.JobCancelRequestedSchema, msg.data)) });
      const answer = await client().cancel({ caller, uid: running.id });
      expect(answer.task).toMatchObject({ status: 'running', cancelRequestedAt: expect.anything() });
      expect(answer.canceledAt).toBeUndefined();
      await eventually('the cancel request', async () => requests.length === 1);
      expect(requests[0]).toMatchObject({ jobId: running.id, organizationUid: ORG, requestedByUid: USER });
      await report(running.id, 1, executorV1.JobStatus.CANCELED, { reasonCode: 'canceled', signal: 'TERM', cleanupVerified: true });
      await eventually('canceled', async () => (await task(running.id)).status === 'canceled');
      sub.unsubscribe();
    } finally {
      await executor.stop();
    }
  });
});

describe('the bus API', () => {
  test('submit, list with filters, duplicate with overrides and stats', async () => {
    const target = server();
    const other = server();
    const api = client();
    const { task: created } = await api.submit({ caller, serverUid: target.uid, kind: 'command', command: 'ls', argsText: '-la /var/log', timeoutSeconds: 0 });
    expect(created).toMatchObject({ status: 'queued', command: 'ls', args: ['-la', '/var/log'], argsText: '-la /var/log', timeoutSeconds: 300, priority: 0, attempt: 1 });
    await expect(api.submit({ caller, serverUid: target.uid, kind: 'command', command: 'ls', priority: 10 })).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    await expect(api.submit({ caller, serverUid: target.uid, kind: 'script', script: 'x', shell: 'sh; rm -rf /' })).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    const { original, task: copy } = await api.duplicate({ caller, uid: created!.uid, serverUid: other.uid, timeoutSeconds: 600 });
    expect(original?.uid).toBe(created!.uid);
    expect(copy).toMatchObject({ command: 'ls', argsText: '-la /var/log', serverUid: other.uid, timeoutSeconds: 600, status: 'queued', duplicatedFromUid: created!.uid });
    const listed = await api.list({ caller, serverUid: other.uid, search: 'var/LOG', sortOrder: 'asc' });
    expect(listed.tasks.map((t) => t.uid)).toEqual([copy!.uid]);
    expect(listed.pageInfo).toMatchObject({ page: 1, limit: 20, total: 1, pages: 1 });
    await expect(api.get({ caller, uid: randomUUID() })).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
    const stats = await api.stats({ caller });
    expect(Number(stats.total)).toBe(await db.task.count({ where: { organizationId: ORG } }));
    expect(stats.activeExecutors).toBeGreaterThanOrEqual(1);
  });
});

function client() {
  return createClient(bus, schedulerV1.Tasks);
}
