// Server operations through the whole platform against real sshd servers on
// 127.0.0.7x: NewRemora's connectivity test, check-status and upload-pem,
// biRun's execute and health check, and accepting a changed host key.
// gateway → executor (executor.v1.connectivity.check) → inventory
// (credentials, host keys, health) and gateway → scheduler → JOBS → executor.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startSshd, type SshServer } from '@runnerhub/infra';
import { ADMIN, type Stack } from '@runnerhub/stack';
import { eventually, request, startTestStack, type JsonResponse } from './harness.js';

const SECRETS_KEY = randomBytes(32).toString('base64');
const SSH_USER = 'rh-ops-e2e';
const SSH_PASSWORD = 'ops-e2e-password-1234';
let stack: Stack & { dispose(): Promise<void> };
let base: string;
const tokens = { admin: '', other: '' };
let dataDir: string;
/** Password login on 127.0.0.71; key login only on .72; .73 stopped (nothing listens). */
let good: SshServer;
let keyOnly: SshServer;
let stopped: SshServer;
let privateKey: string;
/** Every response body seen: no secret may ever come back. */
const seen: string[] = [];

async function call(who: keyof typeof tokens, method: string, path: string, body?: unknown): Promise<JsonResponse> {
  const response = await request(base, method, path, { token: tokens[who], body });
  seen.push(JSON.stringify(response.body));
  return response;
}

const login = async (username: string, password: string) => (await request(base, 'POST', '/api/auth/login', { body: { username, password } })).body.token as string;

async function createServer(who: keyof typeof tokens, name: string, sshd: SshServer, credential: Record<string, string> = { auth_type: 'password', password: SSH_PASSWORD }): Promise<string> {
  const created = await call(who, 'POST', '/api/v1/servers', { name, hostname: sshd.host, port: sshd.port, user: SSH_USER, ...credential });
  expect(created.status).toBe(201);
  return created.body.data.id as string;
}

async function uploadPem(content: string | Buffer, filename = 'deploy-key.pem'): Promise<JsonResponse> {
  const form = new FormData();
  form.append('pem_file', new Blob([content]), filename);
  const response = await fetch(`${base}/api/v1/servers/upload-pem`, { method: 'POST', headers: { authorization: `Bearer ${tokens.admin}` }, body: form });
  const body = await response.json();
  seen.push(JSON.stringify(body));
  return { status: response.status, body, headers: response.headers } as JsonResponse;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'rh-ops-e2e-'));
  // sshd reads authorized_keys as the test account.
  chmodSync(dataDir, 0o755);
  await promisify(execFile)('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ops-e2e', '-f', join(dataDir, 'id_ed25519')]);
  privateKey = readFileSync(join(dataDir, 'id_ed25519'), 'utf8');
  const publicKey = readFileSync(join(dataDir, 'id_ed25519.pub'), 'utf8');
  // One after the other: they share the test account.
  good = await startSshd({ dataDir: join(dataDir, 'good'), address: '127.0.0.71', user: SSH_USER, password: SSH_PASSWORD });
  keyOnly = await startSshd({ dataDir: join(dataDir, 'key'), address: '127.0.0.72', user: SSH_USER, authorizedKeys: [publicKey] });
  stopped = await startSshd({ dataDir: join(dataDir, 'stopped'), address: '127.0.0.73', user: SSH_USER, password: SSH_PASSWORD });
  await stopped.stop();
  stack = await startTestStack({ env: { SECRETS_KEY, SECRETS_KEY_ID: 'e2e' } });
  base = stack.gatewayUrl;
  tokens.admin = await login(ADMIN.username, ADMIN.password);
  await request(base, 'POST', '/auth/register', { body: { email: 'ops-other@example.com', full_name: 'Other', password: 'a-long-password' } });
  tokens.other = await login('ops-other@example.com', 'a-long-password');
}, 180_000);

afterAll(async () => {
  await stack?.dispose();
  await Promise.all([good?.stop(), keyOnly?.stop()]);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  // Nothing secret in any answer.
  const all = seen.join('\n');
  expect(all).not.toContain(SSH_PASSWORD);
  expect(all).not.toContain('PRIVATE KEY');
}, 60_000);

describe('NewRemora: POST /api/v1/servers/:id/test', () => {
  let goodId: string;

  beforeAll(async () => {
    goodId = await createServer('admin', 'ops-good', good);
  });

  test('a good server answers connected, with its latency and output; its host key and health are recorded', async () => {
    const tested = await call('admin', 'POST', `/api/v1/servers/${goodId}/test`);
    expect(tested.status).toBe(200);
    expect(tested.body).toMatchObject({ success: true, error: null });
    expect(tested.body.data).toMatchObject({
      server_id: goodId,
      status: 'connected',
      response_time_ms: expect.any(Number),
      test_command: "echo 'test'",
      test_output: 'test',
      error_code: null,
      host_key_fingerprint: good.hostKeyFingerprint,
      timestamp: expect.any(String),
    });
    const server = (await call('admin', 'GET', `/api/v1/servers/${goodId}`)).body.data;
    expect(server).toMatchObject({ host_key_fingerprint: good.hostKeyFingerprint, health_status: 'healthy', last_check_at: expect.any(String) });
  }, 30_000);

  test('a stopped sshd answers disconnected with a clear reason, and the server is marked unhealthy', async () => {
    const id = await createServer('admin', 'ops-stopped', stopped);
    const tested = await call('admin', 'POST', `/api/v1/servers/${id}/test`);
    expect(tested.status).toBe(200);
    expect(tested.body.data).toMatchObject({ server_id: id, status: 'disconnected', response_time_ms: null, error_code: 'UNREACHABLE' });
    expect(tested.body.data.message).toContain(`${stopped.host}:${stopped.port} is unreachable`);
    expect((await call('admin', 'GET', `/api/v1/servers/${id}`)).body.data).toMatchObject({ health_status: 'unhealthy' });
  }, 30_000);

  test('a wrong password answers disconnected with AUTH_FAILED', async () => {
    const id = await createServer('admin', 'ops-wrong-password', good, { auth_type: 'password', password: 'not-the-password' });
    const tested = await call('admin', 'POST', `/api/v1/servers/${id}/test`);
    expect(tested.body.data).toMatchObject({ status: 'disconnected', error_code: 'AUTH_FAILED' });
    expect(tested.body.data.message).toBe(`${good.host}:${good.port} refused the credentials of ${SSH_USER}`);
  }, 30_000);

  test("another organisation's server is not found", async () => {
    const tested = await call('other', 'POST', `/api/v1/servers/${goodId}/test`);
    expect(tested.status).toBe(404);
    expect(tested.body).toMatchObject({ success: false, data: null });
  });

  test('a changed host key fails the test clearly until an operator accepts it', async () => {
    const before = good.hostKeyFingerprint;
    const rotated = await good.rotateHostKey();
    expect(rotated).not.toBe(before);
    const refused = await call('admin', 'POST', `/api/v1/servers/${goodId}/test`);
    expect(refused.body.data).toMatchObject({ status: 'disconnected', error_code: 'HOST_KEY_CHANGED', host_key_fingerprint: rotated });
    expect(refused.body.data.message).toContain(`the host key of ${good.host}:${good.port} changed: ${before} is recorded, the server offered ${rotated}`);
    // Still refused: nothing changes by itself.
    expect((await call('admin', 'GET', `/api/v1/servers/${goodId}`)).body.data.host_key_fingerprint).toBe(before);

    const accepted = await call('admin', 'PUT', `/api/v1/servers/${goodId}`, { accept_host_key: true });
    expect(accepted.status).toBe(200);
    expect(accepted.body.data.host_key_fingerprint).toBeNull();
    const tested = await call('admin', 'POST', `/api/v1/servers/${goodId}/test`);
    expect(tested.body.data).toMatchObject({ status: 'connected', host_key_fingerprint: rotated });
    expect((await call('admin', 'GET', `/api/v1/servers/${goodId}`)).body.data.host_key_fingerprint).toBe(rotated);
  }, 60_000);
});

test('NewRemora: check-status checks every server of the organisation and sums them up', async () => {
  // A fresh organisation holds exactly these two.
  const up = await createServer('other', 'status-up', good);
  const down = await createServer('other', 'status-down', stopped);
  const checked = await call('other', 'POST', '/api/v1/servers/check-status');
  expect(checked.status).toBe(200);
  const data = checked.body.data;
  expect(data.summary).toMatchObject({ total_checked: 2, connected: 1, disconnected: 1, check_duration_ms: expect.any(Number) });
  expect(data.servers).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ server_id: up, status: 'connected', response_time_ms: expect.any(Number), message: 'Connection successful' }),
      expect.objectContaining({ server_id: down, status: 'disconnected', response_time_ms: null, message: expect.stringContaining(`${stopped.host}:${stopped.port}`) }),
    ]),
  );
}, 60_000);

describe('NewRemora: POST /api/v1/servers/upload-pem', () => {
  test('a private key is stored sealed and a server created with its reference logs in with it', async () => {
    const uploaded = await uploadPem(privateKey);
    expect(uploaded.status).toBe(201);
    expect(uploaded.body.data).toMatchObject({ filename: 'deploy-key.pem', size: Buffer.byteLength(privateKey), url: expect.stringMatching(/^pem:\/\/[0-9a-f-]{36}$/), uploaded_at: expect.any(String) });
    const ref = uploaded.body.data.pem_file_url as string;
    expect(uploaded.body.data.url).toBe(ref);

    const id = await createServer('admin', 'ops-key-only', keyOnly, { auth_type: 'key', pem_file_url: ref });
    const server = (await call('admin', 'GET', `/api/v1/servers/${id}`)).body.data;
    expect(server).toMatchObject({ auth_type: 'key', masked_credential: expect.stringMatching(/^\*+.{4}$/) });
    const tested = await call('admin', 'POST', `/api/v1/servers/${id}/test`);
    expect(tested.body.data).toMatchObject({ status: 'connected', test_output: 'test', host_key_fingerprint: keyOnly.hostKeyFingerprint });

    // Another organisation cannot use the reference.
    const foreign = await call('other', 'POST', '/api/v1/servers', { name: 'stolen-key', hostname: keyOnly.host, port: keyOnly.port, user: SSH_USER, auth_type: 'key', pem_file_url: ref });
    expect(foreign.status).toBe(404);
  }, 30_000);

  test('what is not a private key, or too large, or missing, is refused', async () => {
    const notKey = await uploadPem('-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n');
    expect(notKey.status).toBe(400);
    expect(notKey.body).toMatchObject({ success: false, data: null });
    expect(notKey.body.error).toContain('private key');
    const tooLarge = await uploadPem(Buffer.alloc(70 * 1024, 'a'));
    expect([400, 413]).toContain(tooLarge.status);
    const missing = await fetch(`${base}/api/v1/servers/upload-pem`, { method: 'POST', headers: { authorization: `Bearer ${tokens.admin}` }, body: (() => { const f = new FormData(); f.append('other', 'x'); return f; })() });
    expect(missing.status).toBe(400);
    const unauthenticated = await fetch(`${base}/api/v1/servers/upload-pem`, { method: 'POST', body: new FormData() });
    expect(unauthenticated.status).toBe(401);
  }, 30_000);
});

describe('biRun: execute and health check', () => {
  let number: number;

  beforeAll(async () => {
    const id = await createServer('admin', 'ops-birun', good);
    // The host key rotated in an earlier test is recorded on first use for this new record.
    number = (await call('admin', 'GET', '/api/servers/?search=ops-birun')).body.servers.find((s: { uid: string }) => s.uid === id).id;
  });

  test('execute queues a task whose output NewRemora then shows', async () => {
    const executed = await call('admin', 'POST', `/api/servers/${number}/execute`, { script_content: 'echo "hello from $(basename "$0")-birun"\necho err >&2', timeout: 30 });
    expect(executed.status).toBe(200);
    expect(executed.body).toMatchObject({ execution_id: expect.stringMatching(/^[0-9a-f-]{36}$/), status: 'queued', message: 'Script execution queued successfully' });
    const job = await eventually('the execution to end', async () => {
      const found = await call('admin', 'GET', `/api/v1/jobs/${executed.body.execution_id}`);
      return ['completed', 'failed'].includes(found.body.data.status) ? found.body.data : undefined;
    }, 30_000);
    expect(job).toMatchObject({ status: 'completed', exit_code: 0, stdout: 'hello from bash-birun\n', stderr: 'err\n', type: 'script' });
  }, 60_000);

  test('execute validates its body and the server', async () => {
    expect((await call('admin', 'POST', `/api/servers/${number}/execute`, {})).status).toBe(422);
    expect((await call('admin', 'POST', '/api/servers/999999/execute', { script_content: 'true' })).status).toBe(404);
  });

  test('health/check answers healthy with uptime, load, memory and disk', async () => {
    const checked = await call('admin', 'POST', `/api/servers/${number}/health/check`);
    expect(checked.status).toBe(200);
    expect(checked.body).toMatchObject({ server_id: number, server_name: 'ops-birun', status: 'healthy', error_code: null, last_checked: expect.any(String) });
    expect(checked.body.uptime_seconds).toBeGreaterThan(0);
    expect(checked.body.load_1min).toBeGreaterThanOrEqual(0);
    expect(checked.body.memory_usage).toBeGreaterThan(0);
    expect(checked.body.memory_usage).toBeLessThanOrEqual(100);
    expect(checked.body.disk_usage).toBeGreaterThanOrEqual(0);
    const listed = (await call('admin', 'GET', '/api/servers/?search=ops-birun')).body.servers[0];
    expect(listed).toMatchObject({ health_status: 'healthy', last_health_check: expect.any(String) });
  }, 30_000);

  test('health/check of a stopped sshd answers unhealthy with the reason', async () => {
    const id = await createServer('admin', 'ops-birun-down', stopped);
    const down = (await call('admin', 'GET', '/api/servers/?search=ops-birun-down')).body.servers.find((s: { uid: string }) => s.uid === id).id;
    const checked = await call('admin', 'POST', `/api/servers/${down}/health/check`);
    expect(checked.body).toMatchObject({ status: 'unhealthy', uptime_seconds: null, message: expect.stringContaining('unreachable') });
  }, 30_000);
});
