// A real job's output through the platform: what GET /api/v1/jobs/:id
// inlines (the end of it, capped by JOB_OUTPUT_INLINE_MAX_BYTES), the
// complete /stdout, /stderr and /logs, and the SSE stream from the start and
// from the middle (Last-Event-ID). The cap is small here so that a job of a
// few hundred kilobytes (several LOGS chunks) passes it.
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd, type SshServer } from '@runnerhub/infra';
import { ADMIN, type Stack } from '@runnerhub/stack';
import { eventually, request, startTestStack, type JsonResponse } from './harness.js';

const SECRETS_KEY = randomBytes(32).toString('base64');
const SSH_USER = 'rh-output-e2e';
const SSH_PASSWORD = 'output-e2e-password-1234';
const INLINE_MAX_BYTES = 4096;
let stack: Stack & { dispose(): Promise<void> };
let base: string;
let token: string;
let sshd: SshServer;
let sshDir: string;
let serverId: string;

const call = (method: string, path: string, body?: unknown): Promise<JsonResponse> => request(base, method, path, { token, body });

interface SseEvent {
  event: string;
  id: string;
  data: any;
}

/** Reads a job's SSE stream until `complete`, parsing every event; with `readFrom`, reading starts only once it resolves. */
async function follow(jobId: string, options: { lastEventId?: string; readFrom?: Promise<unknown> } = {}): Promise<SseEvent[]> {
  const response = await fetch(`${base}/api/v1/jobs/${jobId}/stream`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...(options.lastEventId ? { 'last-event-id': options.lastEventId } : {}) },
    signal: AbortSignal.timeout(60_000),
  });
  expect(response.status).toBe(200);
  await options.readFrom;
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const piece of response.body as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(piece, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const field = (name: string) => block.split('\n').find((line) => line.startsWith(`${name}: `))?.slice(name.length + 2);
      const event = field('event');
      if (!event) continue;
      events.push({ event, id: field('id') ?? '', data: JSON.parse(field('data') ?? 'null') });
      if (event === 'complete') return events;
    }
  }
  throw new Error(`the stream ended without complete after ${events.length} events`);
}

const outputs = (events: SseEvent[], type?: string) => events.filter((e) => e.event === 'output' && (!type || e.data.type === type));
const joined = (events: SseEvent[]) => events.map((e) => e.data.content).join('');

async function runScript(script: string): Promise<{ id: string; events: SseEvent[] }> {
  const submitted = await call('POST', '/api/v1/jobs/script', { script, shell: '/bin/sh', server_id: serverId, timeout: 60 });
  expect(submitted.status).toBe(201);
  const id = submitted.body.data.id as string;
  const events = await follow(id);
  expect(events.at(-1)).toMatchObject({ event: 'complete', data: { status: 'completed', exit_code: 0 } });
  // The record follows the executor's events a moment later.
  await eventually('the job record to be completed', async () => ((await call('GET', `/api/v1/jobs/${id}`)).body.data.status === 'completed' ? true : undefined));
  return { id, events };
}

beforeAll(async () => {
  stack = await startTestStack({ env: { SECRETS_KEY, SECRETS_KEY_ID: 'e2e' }, serviceEnv: { gateway: { JOB_OUTPUT_INLINE_MAX_BYTES: String(INLINE_MAX_BYTES) } } });
  base = stack.gatewayUrl;
  token = (await request(base, 'POST', '/api/auth/login', { body: { username: ADMIN.username, password: ADMIN.password } })).body.token;
  sshDir = mkdtempSync(join(tmpdir(), 'rh-output-sshd-'));
  sshd = await startSshd({ dataDir: sshDir, address: '127.0.0.91', user: SSH_USER, password: SSH_PASSWORD });
  const created = await call('POST', '/api/v1/servers', { name: 'output-e2e-sshd', hostname: sshd.host, port: sshd.port, user: SSH_USER, auth_type: 'password', password: SSH_PASSWORD });
  expect(created.status).toBe(201);
  serverId = created.body.data.id;
}, 120_000);

afterAll(async () => {
  await sshd?.stop();
  if (sshDir) rmSync(sshDir, { recursive: true, force: true });
  await stack?.dispose();
}, 60_000);

describe('a job printing more than GET inlines', () => {
  const lines = Array.from({ length: 40_000 }, (_, i) => `${i + 1}\n`).join('');
  // stderr comes after a pause, so every stdout chunk is stored before it and /logs is stdout then stderr.
  const errors = 'first problem\nsecond problem\n';
  let id: string;
  let events: SseEvent[];

  beforeAll(async () => {
    ({ id, events } = await runScript("seq 1 40000\nsleep 0.5\necho 'first problem' >&2\necho 'second problem' >&2\n"));
  }, 90_000);

  test('the stream delivers all of it in order, from the start', () => {
    expect(joined(outputs(events, 'stdout'))).toBe(lines);
    expect(joined(outputs(events, 'stderr'))).toBe(errors);
    const all = outputs(events);
    // Several LOGS chunks, numbered 0, 1, 2, … and with increasing ids.
    expect(all.length).toBeGreaterThan(2);
    expect(all.map((e) => e.data.seq)).toEqual(all.map((_, i) => i));
    const ids = all.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('Last-Event-ID resumes right after an event in the middle', async () => {
    const all = outputs(events);
    const middle = Math.floor(all.length / 2);
    const resumed = await follow(id, { lastEventId: all[middle]!.id });
    expect(outputs(resumed).map((e) => [e.id, e.data.type, e.data.content])).toEqual(all.slice(middle + 1).map((e) => [e.id, e.data.type, e.data.content]));
    expect(resumed.at(-1)).toMatchObject({ event: 'complete', data: { status: 'completed' } });
  }, 60_000);

  test('GET inlines the end of each field and says the output was cut, with the full sizes', async () => {
    const got = await call('GET', `/api/v1/jobs/${id}`);
    expect(got.status).toBe(200);
    const job = got.body.data;
    expect(job).toMatchObject({
      id,
      status: 'completed',
      exit_code: 0,
      stderr: errors,
      output_truncated: true,
      output_bytes: lines.length + errors.length,
      stdout_bytes: lines.length,
      stderr_bytes: errors.length,
    });
    expect(job.stdout).toBe(lines.slice(-INLINE_MAX_BYTES));
    expect(job.output).toBe((lines + errors).slice(-INLINE_MAX_BYTES));
  });

  test('/stdout, /stderr and /logs answer all of it, byte for byte', async () => {
    const stdout = await call('GET', `/api/v1/jobs/${id}/stdout`);
    expect(stdout.status).toBe(200);
    expect(stdout.headers.get('content-type')).toMatch(/^application\/json/);
    expect(stdout.body).toEqual({ success: true, data: { id, status: 'completed', stdout: lines }, error: null, timestamp: expect.any(String) });
    expect((await call('GET', `/api/v1/jobs/${id}/stderr`)).body.data).toEqual({ id, status: 'completed', stderr: errors });
    expect((await call('GET', `/api/v1/jobs/${id}/logs`)).body.data).toEqual({ id, status: 'completed', logs: lines + errors });
  });
});

test('a client that reads nothing until the job has ended still gets all of it before complete', async () => {
  const size = 30_000_000;
  const submitted = await call('POST', '/api/v1/jobs/script', { script: `yes | head -c ${size}\n`, shell: '/bin/sh', server_id: serverId, timeout: 60 });
  const id = submitted.body.data.id as string;
  // The gateway is backed up (far more than the socket buffers hold) when the final status comes.
  const ended = eventually('the job to end', async () => ((await call('GET', `/api/v1/jobs/${id}`)).body.data.status === 'completed' ? true : undefined), 60_000);
  const events = await follow(id, { readFrom: ended });
  expect(joined(outputs(events, 'stdout')) === 'y\n'.repeat(size / 2)).toBe(true);
  expect(events.at(-1)).toMatchObject({ event: 'complete', data: { status: 'completed' } });
}, 90_000);

test('characters split between chunks arrive whole everywhere; the inlined end starts at a whole character', async () => {
  // 25 bytes a line: 64 KiB chunk boundaries (and SSH packet ends) fall inside the 3-byte "✓"s.
  const line = `${'✓'.repeat(8)}\n`;
  const expected = line.repeat(25_000);
  const { id, events } = await runScript(`yes '${'✓'.repeat(8)}' | head -n 25000\n`);
  expect(joined(outputs(events, 'stdout'))).toBe(expected);
  expect((await call('GET', `/api/v1/jobs/${id}/stdout`)).body.data.stdout).toBe(expected);
  const job = (await call('GET', `/api/v1/jobs/${id}`)).body.data;
  expect(job).toMatchObject({ output_truncated: true, stdout_bytes: Buffer.byteLength(expected) });
  // The last 4096 bytes start 2 bytes into a "✓": that character is left out.
  expect(Buffer.byteLength(job.stdout)).toBe(INLINE_MAX_BYTES - 2);
  expect(expected.endsWith(job.stdout)).toBe(true);
}, 60_000);

test('a job with little output is inlined whole, and one with none answers empty fields', async () => {
  const { id } = await runScript('echo hello\necho oops >&2\n');
  expect((await call('GET', `/api/v1/jobs/${id}`)).body.data).toMatchObject({ output_truncated: false, output_bytes: 11, stdout: 'hello\n', stdout_bytes: 6, stderr: 'oops\n', stderr_bytes: 5 });

  const silent = await runScript('true\n');
  const quiet = (await call('GET', `/api/v1/jobs/${silent.id}`)).body.data;
  expect(quiet).toMatchObject({ output: '', stdout: '', stderr: '', output_truncated: false, output_bytes: 0, stdout_bytes: 0, stderr_bytes: 0 });
  expect((await call('GET', `/api/v1/jobs/${silent.id}/logs`)).body.data).toEqual({ id: silent.id, status: 'completed', logs: '' });
}, 60_000);
