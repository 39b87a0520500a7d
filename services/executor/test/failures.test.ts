import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { SshPool, type SshPoolOptions } from '../src/adapters/ssh-pool.js';
import { HostBreakers, type BreakerOptions } from '../src/domain/breaker.js';
import { MemoryHostKeys, trustOnFirstUse } from '../src/domain/host-keys.js';
import { CommandRunner } from '../src/domain/run-command.js';
import { SshError } from '../src/domain/ssh-errors.js';
import { serverOf, type SshTarget } from '../src/domain/target.js';
import { keyTarget, logCount, passwordTarget, startTestFleet, TEST_USER, type TestFleet } from './fleet.js';

let fleet: TestFleet;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  fleet = await startTestFleet(4, { firstAddress: 41 });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

afterAll(async () => {
  await fleet?.stop();
});

function setup(store = new MemoryHostKeys(), poolOptions: Partial<SshPoolOptions> = {}, breakerOptions: BreakerOptions = {}) {
  const pool = new SshPool({ verifyHostKey: trustOnFirstUse(store), ...poolOptions });
  const breakers = new HostBreakers(breakerOptions);
  cleanups.push(() => breakers.shutdown(), () => pool.close());
  const runner = new CommandRunner(pool, breakers);
  const run = (target: SshTarget) => runner.run({ target, work: { command: 'echo ok' }, timeoutMs: 5_000, onOutput: () => {} });
  return { pool, breakers, run };
}

async function failure(promise: Promise<unknown>): Promise<SshError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!(error instanceof SshError)) throw new Error(`expected an SshError, got ${String(error)}`);
  return error;
}

test('an unreachable host fails clearly, opens its breaker to fail fast, and closes it once the host is back', async () => {
  const server = fleet.servers[0]!;
  const states: string[] = [];
  const { pool, breakers, run } = setup(undefined, { backoffInitialMs: 50, backoffMaxMs: 100 }, { resetTimeoutMs: 700, volumeThreshold: 2, onStateChange: (_, state) => states.push(state) });
  const target = passwordTarget(server);
  await server.stop();

  const first = await failure(run(target));
  expect(first.kind).toBe('UNREACHABLE');
  expect(first.message).toBe(`${serverOf(server)} is unreachable (ECONNREFUSED)`);
  expect(first.toBusError()).toMatchObject({ code: 'SERVICE_UNAVAILABLE', status: 503, details: 'UNREACHABLE' });
  expect((await failure(run(target))).kind).toBe('UNREACHABLE');
  expect(breakers.state(serverOf(server))).toBe('open');

  // Open: no connection is even tried.
  const attempts = pool.stats().connectAttempts;
  const started = Date.now();
  const fast = await failure(run(target));
  expect(fast.kind).toBe('BREAKER_OPEN');
  expect(fast.toBusError().code).toBe('SERVICE_UNAVAILABLE');
  expect(Date.now() - started).toBeLessThan(50);
  expect(pool.stats().connectAttempts).toBe(attempts);

  await server.start();
  await sleep(800);
  expect((await run(target)).status).toBe('completed');
  expect(breakers.state(serverOf(server))).toBe('closed');
  expect(states).toEqual(['open', 'halfOpen', 'close']);
});

test('a changed host key is refused until the new key is accepted, and does not trip the breaker', async () => {
  const server = fleet.servers[1]!;
  const store = new MemoryHostKeys();
  const target = passwordTarget(server);
  const firstUse = setup(store);
  expect((await firstUse.run(target)).status).toBe('completed');
  expect(store.get(serverOf(server))).toBe(server.hostKeyFingerprint);

  const recorded = server.hostKeyFingerprint;
  const offered = await server.rotateHostKey();
  // A new pool: pooled connections were verified with the old key and live on.
  const { breakers, run } = setup(store);
  const refused = await failure(run(target));
  expect(refused.kind).toBe('HOST_KEY_CHANGED');
  expect(refused.message).toBe(
    `the host key of ${serverOf(server)} changed: ${recorded} is recorded, the server offered ${offered}; accept the new key if the change is expected`,
  );
  expect(refused.toBusError()).toMatchObject({ code: 'RESOURCE_CONFLICT', details: 'HOST_KEY_CHANGED' });
  expect((await failure(run(target))).kind).toBe('HOST_KEY_CHANGED');
  expect(breakers.state(serverOf(server))).toBe('closed');

  store.record(serverOf(server), offered);
  expect((await run(target)).status).toBe('completed');
});

test('a wrong password fails clearly with a single login attempt however many requests use it', async () => {
  const server = fleet.servers[2]!;
  const { pool, breakers, run } = setup();
  const connectionsBefore = logCount(server, /^Connection from/);
  const wrong = passwordTarget(server, 'not-the-password');

  const burst = await Promise.all(Array.from({ length: 20 }, () => failure(run(wrong))));
  for (let i = 0; i < 10; i++) burst.push(await failure(run(wrong)));
  for (const error of burst) {
    expect(error.kind).toBe('AUTH_FAILED');
    expect(error.message).toBe(`${serverOf(server)} refused the credentials of ${TEST_USER}`);
    expect(error.toBusError()).toMatchObject({ code: 'PERMISSION_DENIED', status: 403 });
  }
  await sleep(100);
  expect(pool.stats().connectAttempts).toBe(1);
  expect(logCount(server, /^Connection from/) - connectionsBefore).toBe(1);
  expect(logCount(server, /^Failed password for rh-exec-test/)).toBe(1);
  expect(breakers.state(serverOf(server))).toBe('closed');

  // Only those credentials are held back: the right password gets in at once.
  expect((await run(passwordTarget(server))).status).toBe('completed');
});

test('a private key with its passphrase logs in; a wrong passphrase is refused before connecting', async () => {
  const server = fleet.servers[3]!;
  const { pool, run } = setup();
  expect((await run(keyTarget(server, fleet.clientKey.private))).status).toBe('completed');
  expect(logCount(server, /^Accepted publickey for rh-exec-test/)).toBe(1);

  const attempts = pool.stats().connectAttempts;
  const refused = await failure(run(keyTarget(server, fleet.clientKey.private, 'wrong-passphrase')));
  expect(refused.kind).toBe('INVALID_CREDENTIALS');
  expect(refused.toBusError()).toMatchObject({ code: 'VALIDATION_ERROR', field: 'credentials' });
  expect(pool.stats().connectAttempts).toBe(attempts + 1);
  // The readiness probe and the key login: the wrong passphrase never reached the server.
  expect(logCount(server, /^Connection from/)).toBe(2);
});

test('a server that accepts TCP but never speaks SSH fails with a handshake timeout', async () => {
  const sockets: Socket[] = [];
  const silent: Server = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.49', resolve));
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => silent.close(resolve));
  });
  const port = (silent.address() as { port: number }).port;
  const { run } = setup(undefined, { handshakeTimeoutMs: 300 });
  const started = Date.now();
  const error = await failure(run({ host: '127.0.0.49', port, username: TEST_USER, credentials: { password: 'x' } }));
  expect(error.kind).toBe('HANDSHAKE_TIMEOUT');
  expect(error.message).toBe(`127.0.0.49:${port} did not complete the SSH handshake within 300 ms`);
  expect(Date.now() - started).toBeLessThan(2_000);
});

test('a server that stops answering on an open connection fails the command after the start timeout, not never', async () => {
  const server = fleet.servers[3]!;
  const { run } = setup(undefined, { startTimeoutMs: 500 });
  const target = passwordTarget(server);
  expect((await run(target)).status).toBe('completed');
  // The processes serving this server's connections, as sshd logged them: stopped, they read nothing.
  const children = [...readFileSync(server.logFile, 'utf8').matchAll(/User child is on pid (\d+)/g)].map((match) => Number(match[1]));
  for (const pid of children) process.kill(pid, 'SIGSTOP');
  try {
    const started = Date.now();
    const error = await failure(run(target));
    expect(error.kind).toBe('CHANNEL_OPEN_FAILED');
    expect(error.message).toBe(`${serverOf(server)} did not start the command within 500 ms`);
    expect(Date.now() - started).toBeLessThan(3_000);
  } finally {
    for (const pid of children) process.kill(pid, 'SIGCONT');
  }
  expect((await run(target)).status).toBe('completed');
});
