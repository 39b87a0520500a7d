import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { SshPool } from '../src/adapters/ssh-pool.js';
import { HostBreakers } from '../src/domain/breaker.js';
import { MemoryHostKeys, trustOnFirstUse } from '../src/domain/host-keys.js';
import { CommandRunner } from '../src/domain/run-command.js';
import type { SshTarget } from '../src/domain/target.js';
import type { SshServer } from '@runnerhub/infra';
import { logCount, passwordTarget, remoteProcesses, startTestFleet, type TestFleet } from './fleet.js';

const MAX_SESSIONS = 3;
const CONNECTIONS_PER_SERVER = 2;
let fleet: TestFleet;
let pool: SshPool;
let breakers: HostBreakers;
let runner: CommandRunner;
let targets: SshTarget[];

beforeAll(async () => {
  fleet = await startTestFleet(5, { firstAddress: 51, maxSessions: MAX_SESSIONS });
  pool = new SshPool({ verifyHostKey: trustOnFirstUse(new MemoryHostKeys()), maxConnectionsPerServer: CONNECTIONS_PER_SERVER });
  breakers = new HostBreakers();
  runner = new CommandRunner(pool, breakers);
  targets = fleet.servers.map((server) => passwordTarget(server, undefined, MAX_SESSIONS));
});

afterAll(async () => {
  breakers?.shutdown();
  await pool?.close();
  await fleet?.stop();
});

async function runMany(count: number): Promise<void> {
  const results = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      let stdout = '';
      const result = await runner.run({
        target: targets[i % targets.length]!,
        work: { command: `sleep 0.05; echo job-${i}` },
        timeoutMs: 10_000,
        onOutput: (chunk) => void (stdout += chunk.data.toString()),
      });
      return { ...result, stdout, i };
    }),
  );
  for (const result of results) expect(result).toMatchObject({ status: 'completed', stdout: `job-${result.i}\n` });
}

const logins = (i: number) => logCount(fleet.servers[i]!, /^Accepted password for rh-exec-test/);

test('100 commands across 5 servers keep every connection within MaxSessions and at most 2 connections per server', async () => {
  await runMany(100);
  const stats = pool.stats();
  expect(stats.channelsOpened).toBe(100);
  expect(stats.peakChannelsPerConnection).toBe(MAX_SESSIONS);
  for (let i = 0; i < fleet.servers.length; i++) {
    expect(logins(i)).toBeGreaterThanOrEqual(1);
    expect(logins(i)).toBeLessThanOrEqual(CONNECTIONS_PER_SERVER);
    // sshd numbers a connection's sessions by free slot: ids stay below MaxSessions.
    const ids = readFileSync(fleet.servers[i]!.logFile, 'utf8').matchAll(/Starting session: command for rh-exec-test .* id (\d+)/g);
    expect(Math.max(...[...ids].map((match) => Number(match[1])))).toBe(MAX_SESSIONS - 1);
  }
  expect(stats.connectionsOpened).toBe(fleet.servers.reduce((sum, _, i) => sum + logins(i), 0));
});

test('the next 100 commands reuse the open connections without a single new login', async () => {
  const before = fleet.servers.map((_, i) => logins(i));
  const opened = pool.stats().connectionsOpened;
  await runMany(100);
  expect(fleet.servers.map((_, i) => logins(i))).toEqual(before);
  expect(pool.stats().connectionsOpened).toBe(opened);
});

test('commands one after another each start on a session opened while the previous one ran', async () => {
  const ownPool = new SshPool({ verifyHostKey: trustOnFirstUse(new MemoryHostKeys()) });
  const ownRunner = new CommandRunner(ownPool, breakers);
  try {
    for (let i = 0; i < 5; i++) {
      const result = await ownRunner.run({ target: targets[3]!, work: { command: `echo ${i}` }, timeoutMs: 5_000, onOutput: () => {} });
      expect(result.status).toBe('completed');
    }
    expect(ownPool.stats()).toMatchObject({ channelsOpened: 5, channelsPreopened: 5, channelOpenRetries: 0, connectionsOpened: 1 });
  } finally {
    await ownPool.close();
  }
});

test('a spare session never takes the last slot: with one session allowed, every command opens its own', async () => {
  const ownPool = new SshPool({ verifyHostKey: trustOnFirstUse(new MemoryHostKeys()) });
  const ownRunner = new CommandRunner(ownPool, breakers);
  try {
    for (let i = 0; i < 5; i++) {
      let stdout = '';
      const result = await ownRunner.run({ target: passwordTarget(fleet.servers[4]!, undefined, 1), work: { command: `echo ${i}` }, timeoutMs: 5_000, onOutput: (chunk) => void (stdout += chunk.data.toString()) });
      expect(result.status).toBe('completed');
      expect(stdout).toBe(`${i}\n`);
    }
    expect(ownPool.stats()).toMatchObject({ channelsOpened: 5, channelsPreopened: 0, peakChannelsPerConnection: 1 });
  } finally {
    await ownPool.close();
  }
});

/** Kills the sshd process behind each connection the server accepted so far, as a network drop would end them. */
async function dropConnections(server: SshServer): Promise<void> {
  for (const match of readFileSync(server.logFile, 'utf8').matchAll(/User child is on pid (\d+)/g)) {
    try {
      process.kill(Number(match[1]), 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await sleep(100);
}

test('a dropped connection is replaced: the next command connects again', async () => {
  await dropConnections(fleet.servers[0]!);
  const before = logins(0);
  const result = await runner.run({ target: targets[0]!, work: { command: 'echo again' }, timeoutMs: 5_000, onOutput: () => {} });
  expect(result.status).toBe('completed');
  expect(logins(0)).toBe(before + 1);
});

test('a connection lost while a command runs fails the run and its remote processes are still killed', async () => {
  const tag = 7000 + Math.floor(Math.random() * 999);
  const server = fleet.servers[2]!;
  let started: () => void = () => {};
  const running = new Promise<void>((resolve) => (started = resolve));
  const outcome = runner.run({ target: targets[2]!, work: { command: `echo started; sleep ${tag}` }, timeoutMs: 10_000, onOutput: () => started() });
  await running;
  await dropConnections(server);
  const result = await outcome;
  expect(result).toMatchObject({ status: 'failed', reason: `the connection to ${server.host}:${server.port} was lost while the command ran`, exitCode: null });
  expect(result.cleanup).toMatchObject({ signal: 'TERM', verified: true });
  expect(await remoteProcesses(server, `sleep ${tag}`)).toEqual([]);
});

test('idle connections are closed and a later command opens a new one', async () => {
  const idlePool = new SshPool({ verifyHostKey: trustOnFirstUse(new MemoryHostKeys()), idleTimeoutMs: 200 });
  const idleRunner = new CommandRunner(idlePool, breakers);
  const run = () => idleRunner.run({ target: targets[1]!, work: { command: 'true' }, timeoutMs: 5_000, onOutput: () => {} });
  try {
    await run();
    expect(idlePool.stats().openConnections).toBe(1);
    await sleep(400);
    expect(idlePool.stats().openConnections).toBe(0);
    await run();
    expect(idlePool.stats()).toMatchObject({ openConnections: 1, connectionsOpened: 2 });
  } finally {
    await idlePool.close();
  }
});
