// NewRemora jobs through the whole platform: gateway → scheduler (tasks in
// PostgreSQL) → JOBS → executor → LOGS/EVENTS → scheduler and the SSE stream.
//
// "a real job end to end" runs against a real sshd through the real executor.
// "following a job" plays the executor's part itself over the stack's NATS (it
// stops the executor first), so that it checks exactly what the gateway and
// the scheduler do with what an executor publishes.
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { executorV1 } from '@runnerhub/contracts';
import { startSshd, type SshServer } from '@runnerhub/infra';
import { ADMIN, type Stack } from '@runnerhub/stack';
import { EventSource } from 'eventsource';
import { eventually, request, startTestStack, type JsonResponse } from './harness.js';

const SECRETS_KEY = randomBytes(32).toString('base64');
const SSH_USER = 'rh-jobs-e2e';
const SSH_PASSWORD = 'jobs-e2e-password-1234';
let stack: Stack & { dispose(): Promise<void> };
let base: string;
const tokens = { admin: '', viewer: '', foreign: '' };

async function call(who: keyof typeof tokens, method: string, path: string, body?: unknown): Promise<JsonResponse> {
  return request(base, method, path, { token: tokens[who], body });
}

const login = async (username: string, password: string) => (await request(base, 'POST', '/api/auth/login', { body: { username, password } })).body.token as string;

async function createServer(name: string, host: string, port: number): Promise<string> {
  const created = await call('admin', 'POST', '/api/v1/servers', { name, hostname: host, port, user: SSH_USER, auth_type: 'password', password: SSH_PASSWORD });
  expect(created.status).toBe(201);
  return created.body.data.id as string;
}

interface SseEvent {
  event: string;
  data: any;
  id: string;
}

/** Follows a job's stream with the eventsource package until `complete` (or the timeout). */
function follow(jobId: string, options: { lastEventId?: string; onEvent?: (event: SseEvent) => void; timeoutMs?: number } = {}): { opened: Promise<void>; done: Promise<SseEvent[]> } {
  const events: SseEvent[] = [];
  let opened!: () => void;
  const openedPromise = new Promise<void>((resolve) => (opened = resolve));
  const done = new Promise<SseEvent[]>((resolve, reject) => {
    const source = new EventSource(`${base}/api/v1/jobs/${jobId}/stream`, {
      fetch: (input, init) =>
        fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), authorization: `Bearer ${tokens.admin}`, ...(options.lastEventId ? { 'last-event-id': options.lastEventId } : {}) } }),
    });
    const timer = setTimeout(() => {
      source.close();
      reject(new Error(`no complete event within the timeout; got ${JSON.stringify(events)}`));
    }, options.timeoutMs ?? 30_000);
    source.onopen = () => opened();
    for (const type of ['status', 'output', 'complete']) {
      source.addEventListener(type, (message) => {
        const event = { event: type, data: JSON.parse(message.data), id: message.lastEventId };
        events.push(event);
        options.onEvent?.(event);
        if (type === 'complete') {
          clearTimeout(timer);
          // The server ends the response after complete; without close() EventSource would reconnect.
          source.close();
          resolve(events);
        }
      });
    }
  });
  return { opened: openedPromise, done };
}

beforeAll(async () => {
  stack = await startTestStack({ env: { SECRETS_KEY, SECRETS_KEY_ID: 'e2e', SCHEDULER_PER_SERVER_CONCURRENCY: '4' } });
  base = stack.gatewayUrl;
  tokens.admin = await login(ADMIN.username, ADMIN.password);
  expect((await call('admin', 'POST', '/api/users', { username: 'jobs-viewer', password: 'a-long-password', role: 'viewer' })).status).toBe(201);
  tokens.viewer = await login('jobs-viewer', 'a-long-password');
  await request(base, 'POST', '/auth/register', { body: { email: 'jobs-outsider@example.com', full_name: 'Outsider', password: 'a-long-password' } });
  tokens.foreign = await login('jobs-outsider@example.com', 'a-long-password');
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
}, 60_000);

// Runs once the executor consumes JOBS (see the report that came with this file).
describe('a real job end to end', () => {
  let sshd: SshServer;
  let sshDir: string;
  let serverId: string;

  beforeAll(async () => {
    sshDir = mkdtempSync(join(tmpdir(), 'rh-jobs-sshd-'));
    sshd = await startSshd({ dataDir: sshDir, address: '127.0.0.61', user: SSH_USER, password: SSH_PASSWORD });
    serverId = await createServer('jobs-e2e-sshd', sshd.host, sshd.port);
  }, 60_000);

  afterAll(async () => {
    await sshd?.stop();
    if (sshDir) rmSync(sshDir, { recursive: true, force: true });
  });

  test('a command runs on the server, its arguments arrive as given, and its output is followed live and kept', async () => {
    const submitted = await call('admin', 'POST', '/api/v1/jobs', { command: 'printf "%s|"', args: `one 'two words' "\\$HOME" ';' '$(id)'`, server_id: serverId, timeout: 30 });
    expect(submitted.status).toBe(201);
    const job = submitted.body.data;
    expect(job).toMatchObject({ status: 'queued', server_id: serverId, timeout: 30 });
    const events = await follow(job.id).done;
    expect(events.at(-1)).toMatchObject({ event: 'complete', data: { status: 'completed', exit_code: 0 } });
    const stdout = events.filter((e) => e.event === 'output' && e.data.type === 'stdout').map((e) => e.data.content).join('');
    expect(stdout).toBe('one|two words|$HOME|;|$(id)|');
    // The stream follows the executor's events; the job's record follows them too, a moment later.
    const finished = await eventually('the record to show the end', async () => {
      const got = await call('admin', 'GET', `/api/v1/jobs/${job.id}`);
      return got.body.data.status === 'completed' ? got.body.data : undefined;
    }, 10_000);
    expect(finished).toMatchObject({ id: job.id, status: 'completed', exit_code: 0, stdout: 'one|two words|$HOME|;|$(id)|', stderr: '', started_at: expect.any(String), finished_at: expect.any(String) });
  }, 60_000);

  test('a script is fed to its shell over stdin; stdout and stderr stay apart; a non-zero exit fails the job', async () => {
    const submitted = await call('admin', 'POST', '/api/v1/jobs/script', { script: 'echo out\necho err >&2\nexit 3\n', shell: '/bin/sh', server_id: serverId, timeout: 30 });
    expect(submitted.status).toBe(201);
    const id = submitted.body.data.id;
    const done = await eventually('the script to end', async () => {
      const job = await call('admin', 'GET', `/api/v1/jobs/${id}`);
      return ['completed', 'failed'].includes(job.body.data.status) ? job.body.data : undefined;
    }, 30_000);
    expect(done).toMatchObject({ status: 'failed', exit_code: 3, stdout: 'out\n', stderr: 'err\n' });
    expect((await call('admin', 'GET', `/api/v1/jobs/${id}/stderr`)).body.data.stderr).toBe('err\n');
  }, 60_000);
});

describe('following a job (the test plays the executor)', () => {
  let nc: NatsConnection;
  let js: JetStreamClient;
  let serverId: string;

  beforeAll(async () => {
    // No real executor may take these jobs: the test reports for them.
    await stack.services.get('executor')?.stop();
    nc = await connect({ servers: stack.nats.url });
    js = jetstream(nc);
    serverId = await createServer('jobs-e2e-played', '127.0.0.62', 22);
  }, 60_000);

  afterAll(async () => {
    await nc?.drain();
  });

  async function status(jobId: string, init: Partial<MessageInitShape<typeof executorV1.JobStatusChangedSchema>>): Promise<void> {
    const event = create(executorV1.JobStatusChangedSchema, { jobId, attempt: 1, executorId: 'e2e-played', ...init });
    await js.publish(`events.job.${jobId}.status`, toBinary(executorV1.JobStatusChangedSchema, event), { msgID: `${jobId}.1.${event.status}` });
  }

  async function output(jobId: string, seq: number, stream: 'stdout' | 'stderr', text: string): Promise<number> {
    const chunk = create(executorV1.OutputChunkSchema, { jobId, attempt: 1, seq: BigInt(seq), stream: stream === 'stdout' ? executorV1.OutputStream.STDOUT : executorV1.OutputStream.STDERR, data: Buffer.from(text), at: timestampFromDate(new Date()) });
    const ack = await js.publish(`logs.${jobId}.${stream}`, toBinary(executorV1.OutputChunkSchema, chunk), { msgID: `${jobId}.1.${seq}` });
    return ack.seq;
  }

  test('SSE: a late subscriber gets everything so far, then live output, then complete; Last-Event-ID resumes from the middle', async () => {
    const submitted = await call('admin', 'POST', '/api/v1/jobs', { command: 'build.sh', args: '--fast', server_id: serverId });
    expect(submitted.status).toBe(201);
    const id = submitted.body.data.id as string;
    await status(id, { status: executorV1.JobStatus.RUNNING, startedAt: timestampFromDate(new Date()) });
    await eventually('running', async () => ((await call('admin', 'GET', `/api/v1/jobs/${id}`)).body.data.status === 'running' ? true : undefined));
    const lines = ['compiling\n', 'warning: é\n', 'linking\n', 'testing\n', 'error: none\n', 'done\n'];
    const streams = ['stdout', 'stderr', 'stdout', 'stdout', 'stderr', 'stdout'] as const;
    const seqs: number[] = [];
    for (let i = 0; i < 3; i++) seqs.push(await output(id, i, streams[i]!, lines[i]!));

    // Late: three chunks are already there.
    let received = 0;
    const fromStart = follow(id, { onEvent: (e) => void (e.event === 'output' && received++) });
    await fromStart.opened;
    await eventually('the replay of what was already there', async () => (received >= 3 ? true : undefined));
    for (let i = 3; i < 6; i++) seqs.push(await output(id, i, streams[i]!, lines[i]!));
    await status(id, { status: executorV1.JobStatus.COMPLETED, exitCode: 0, endedAt: timestampFromDate(new Date()), outputChunks: 6n, outputBytes: 60n });
    const events = await fromStart.done;
    const outputs = events.filter((e) => e.event === 'output');
    expect(outputs.map((e) => e.data.content)).toEqual(lines);
    expect(outputs.map((e) => e.data.type)).toEqual([...streams]);
    expect(outputs.map((e) => Number(e.id))).toEqual(seqs);
    expect(events[0]).toMatchObject({ event: 'status', data: { status: 'running' } });
    expect(events.at(-1)).toMatchObject({ event: 'complete', data: { status: 'completed', exit_code: 0 } });

    // Resumed after the third chunk: only the rest, then complete at once (the job has ended).
    const resumed = await follow(id, { lastEventId: String(seqs[2]) }).done;
    expect(resumed.filter((e) => e.event === 'output').map((e) => e.data.content)).toEqual(lines.slice(3));
    expect(resumed.at(-1)).toMatchObject({ event: 'complete', data: { status: 'completed' } });

    const job = (await call('admin', 'GET', `/api/v1/jobs/${id}`)).body;
    expect(job).toMatchObject({ success: true, error: null });
    expect(job.data).toMatchObject({
      id,
      command: 'build.sh',
      args: '--fast',
      status: 'completed',
      server_id: serverId,
      server: { id: serverId, name: 'jobs-e2e-played', hostname: '127.0.0.62' },
      exit_code: 0,
      timeout: 300,
      output: lines.join(''),
      stdout: 'compiling\nlinking\ntesting\ndone\n',
      stderr: 'warning: é\nerror: none\n',
    });
    expect((await call('viewer', 'GET', `/api/v1/jobs/${id}/logs`)).body.data.logs).toBe(lines.join(''));
    expect((await call('viewer', 'GET', `/api/v1/jobs/${id}/stdout`)).body.data.stdout).toBe('compiling\nlinking\ntesting\ndone\n');
  }, 60_000);

  test('cancel: a queued job at once, a running one through its executor; duplicate with overrides', async () => {
    const queued = (await call('admin', 'POST', '/api/v1/jobs', { command: 'sleep', args: '60', server_id: serverId, timeout: 120 })).body.data;
    const canceled = await call('admin', 'POST', `/api/v1/jobs/${queued.id}/cancel`);
    expect(canceled.status).toBe(200);
    expect(canceled.body.data).toEqual({ id: queued.id, status: 'canceled', canceled_at: expect.any(String), cancel_requested_at: expect.any(String) });
    expect((await call('admin', 'POST', `/api/v1/jobs/${queued.id}/cancel`)).status).toBe(409);

    const running = (await call('admin', 'POST', '/api/v1/jobs', { command: 'sleep', args: '60', server_id: serverId })).body.data;
    await status(running.id, { status: executorV1.JobStatus.RUNNING });
    await eventually('running', async () => ((await call('admin', 'GET', `/api/v1/jobs/${running.id}`)).body.data.status === 'running' ? true : undefined));
    const cancelRequests: string[] = [];
    const sub = nc.subscribe(`events.job.${running.id}.cancel`, { callback: (_e, msg) => cancelRequests.push(msg.subject) });
    const asked = await call('admin', 'POST', `/api/v1/jobs/${running.id}/cancel`);
    expect(asked.status).toBe(202);
    expect(asked.body.data).toMatchObject({ id: running.id, status: 'running', canceled_at: null });
    await eventually('the cancel request', async () => (cancelRequests.length > 0 ? true : undefined));
    sub.unsubscribe();
    await status(running.id, { status: executorV1.JobStatus.CANCELED, reasonCode: 'canceled', signal: 'TERM' });
    await eventually('canceled', async () => ((await call('admin', 'GET', `/api/v1/jobs/${running.id}`)).body.data.status === 'canceled' ? true : undefined));

    const other = await createServer('jobs-e2e-other', '127.0.0.63', 22);
    const copy = await call('admin', 'POST', `/api/v1/jobs/${queued.id}/duplicate`, { server_id: other, timeout: 600 });
    expect(copy.status).toBe(201);
    expect(copy.body.data).toEqual({
      original_job: { id: queued.id, command: 'sleep' },
      new_job: expect.objectContaining({ command: 'sleep', args: '60', server_id: other, timeout: 600, status: 'queued', duplicated_from: queued.id }),
    });
  }, 60_000);

  test('list with filters and pagination, system figures, roles and organisations', async () => {
    const list = await call('viewer', 'GET', `/api/v1/jobs?server_id=${serverId}&status=canceled&limit=1&sort_by=created_at&sort_order=asc`);
    expect(list.status).toBe(200);
    expect(list.body.data.pagination).toEqual({ page: 1, limit: 1, total: 2, total_pages: 2, has_next: true, has_prev: false });
    expect(list.body.data.jobs[0]).toMatchObject({ status: 'canceled', command: 'sleep', args: '60' });
    const searched = await call('viewer', 'GET', '/api/v1/jobs?search=BUILD');
    expect(searched.body.data.jobs.map((j: { command: string }) => j.command)).toEqual(['build.sh']);
    expect((await call('viewer', 'GET', '/api/v1/jobs?status=bogus')).status).toBe(400);

    const info = await call('viewer', 'GET', '/api/v1/system/info');
    expect(info.status).toBe(200);
    expect(info.body.data).toMatchObject({ total_jobs: expect.any(Number), completed_jobs: expect.any(Number), canceled_jobs: 2, queued_jobs: expect.any(Number), running_jobs: 0, total_servers: expect.any(Number), timestamp: expect.any(String) });
    expect(info.body.data.total_servers).toBeGreaterThanOrEqual(3);
    const enhanced = await call('viewer', 'GET', '/api/v1/system/enhanced');
    expect(enhanced.body.data).toEqual({
      connected_servers: expect.any(Number),
      disconnected_servers: expect.any(Number),
      average_job_duration: expect.any(Number),
      jobs_per_hour: expect.any(Number),
      worker_status: { active_workers: expect.any(Number), total_capacity: 100 },
    });

    // Viewers read; operators run. Another organisation's job does not exist for you.
    expect((await call('viewer', 'POST', '/api/v1/jobs', { command: 'id', server_id: serverId })).status).toBe(403);
    const job = list.body.data.jobs[0].id;
    const foreign = await call('foreign', 'GET', `/api/v1/jobs/${job}`);
    expect(foreign.status).toBe(404);
    expect(foreign.body).toMatchObject({ success: false, data: null, error: expect.any(String), request_id: expect.any(String) });
    expect((await call('foreign', 'POST', '/api/v1/jobs', { command: 'id', server_id: serverId })).status).toBe(404);
    expect((await request(base, 'GET', `/api/v1/jobs/${job}/stream`)).status).toBe(401);
    expect((await call('admin', 'GET', `/api/v1/jobs/${randomUUID()}`)).status).toBe(404);
  }, 60_000);
});
