import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SshPool } from '../src/adapters/ssh-pool.js';
import { HostBreakers } from '../src/domain/breaker.js';
import { MemoryHostKeys, trustOnFirstUse } from '../src/domain/host-keys.js';
import type { OutputChunk } from '../src/domain/output.js';
import { CommandRunner, type RunRequest } from '../src/domain/run-command.js';
import { isSshError } from '../src/domain/ssh-errors.js';
import type { SshTarget } from '../src/domain/target.js';
import { passwordTarget, remoteProcesses, startTestFleet, type TestFleet } from './fleet.js';

let fleet: TestFleet;
let pool: SshPool;
let breakers: HostBreakers;
let runner: CommandRunner;
let target: SshTarget;

beforeAll(async () => {
  fleet = await startTestFleet(1, { firstAddress: 31 });
  pool = new SshPool({ verifyHostKey: trustOnFirstUse(new MemoryHostKeys()) });
  breakers = new HostBreakers();
  runner = new CommandRunner(pool, breakers, { killGraceMs: 500, closeGraceMs: 1_000 });
  target = passwordTarget(fleet.servers[0]!);
});

afterAll(async () => {
  breakers?.shutdown();
  await pool?.close();
  await fleet?.stop();
});

async function run(work: RunRequest['work'], extra: Partial<RunRequest> = {}) {
  const chunks: OutputChunk[] = [];
  const result = await runner.run({ target, work, timeoutMs: 10_000, onOutput: (chunk) => void chunks.push(chunk), ...extra });
  const text = (stream: 'stdout' | 'stderr') => Buffer.concat(chunks.filter((c) => c.stream === stream).map((c) => c.data)).toString();
  return { result, chunks, stdout: text('stdout'), stderr: text('stderr') };
}

test('a successful command completes with exit code 0, its output and its times', async () => {
  const before = Date.now();
  const { result, stdout, stderr } = await run({ command: 'echo hello; echo done >&2' });
  expect(result).toMatchObject({ status: 'completed', exitCode: 0, signal: null, reason: '' });
  expect(stdout).toBe('hello\n');
  expect(stderr).toBe('done\n');
  expect(result.startedAt.getTime()).toBeGreaterThanOrEqual(before);
  expect(result.endedAt.getTime()).toBeGreaterThanOrEqual(result.startedAt.getTime());
  expect(result.cleanup).toBeUndefined();
});

test('a non-zero exit fails with that exit code', async () => {
  const { result, stdout } = await run({ command: 'echo partial; exit 3' });
  expect(result).toMatchObject({ status: 'failed', exitCode: 3, reason: 'exit code 3' });
  expect(stdout).toBe('partial\n');
});

test('stdout and stderr arrive separated, in the order they were written, with consecutive sequence numbers', async () => {
  const { chunks } = await run({ command: 'for i in 1 2 3; do echo "out $i"; sleep 0.05; echo "err $i" >&2; sleep 0.05; done' });
  expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i));
  expect(chunks.map((c) => `${c.stream}:${c.data.toString().trim()}`)).toEqual(['stdout:out 1', 'stderr:err 1', 'stdout:out 2', 'stderr:err 2', 'stdout:out 3', 'stderr:err 3']);
  const times = chunks.map((c) => c.at.getTime());
  expect([...times].sort((a, b) => a - b)).toEqual(times);
});

test('binary output arrives byte for byte', async () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const escapes = [...all].map((byte) => `\\${byte.toString(8).padStart(3, '0')}`).join('');
  const { result, chunks } = await run({ command: `for i in 1 2 3 4; do printf '${escapes}'; done` });
  expect(result.status).toBe('completed');
  expect(Buffer.concat(chunks.map((c) => c.data)).equals(Buffer.concat([all, all, all, all]))).toBe(true);
});

test('a script goes over stdin to its interpreter, with the environment, and nothing is shell-quoted on the way', async () => {
  const tricky = `it's "quoted" $HOME \`id\` \\ and\na second line`;
  const script = `#!/bin/bash\nset -eu\nprintf '%s' "$TRICKY"\necho\ncat <<'EOF'\n$HOME stays literal\nEOF\necho "bash $BASH_VERSION" | cut -c1-4\n`;
  const bash = await run({ script, shell: '/bin/bash' }, { env: { TRICKY: tricky } });
  expect(bash.result.status).toBe('completed');
  expect(bash.stdout).toBe(`${tricky}\n$HOME stays literal\nbash\n`);
  const perl = await run({ script: 'print "perl says $ENV{TRICKY}";', shell: 'perl' }, { env: { TRICKY: tricky } });
  expect(perl.stdout).toBe(`perl says ${tricky}`);
});

test('a command runs as `ssh host command` would, in the login shell with nothing on stdin; with environment, /bin/sh reads it from stdin', async () => {
  // sshd names the login shell by its base name; /bin/sh reading its program from stdin is /bin/sh.
  const plain = await run({ command: 'echo "$0"; cat; echo after-eof' });
  expect(plain.stdout).toBe('sh\nafter-eof\n');
  const tag = 5000 + Math.floor(Math.random() * 999);
  const secret = `secret-${tag}`;
  const withEnv = run({ command: `echo "$0"; sleep 1.${tag}; echo "$TOKEN"` }, { env: { TOKEN: secret } });
  while ((await remoteProcesses(fleet.servers[0]!, `sleep 1.${tag}`)).length === 0) await sleep(50);
  expect(await remoteProcesses(fleet.servers[0]!, secret)).toEqual([]);
  expect((await withEnv).stdout).toBe(`/bin/sh\n${secret}\n`);
});

test('bad input is refused before anything runs', async () => {
  for (const work of [{ command: '  ' }, { script: 'echo', shell: 'bash -c evil' }, { script: 'echo', shell: 'cmd.exe' }]) {
    await expect(run(work)).rejects.toMatchObject({ kind: 'INVALID_REQUEST' });
  }
  const error = await run({ command: 'true' }, { env: { 'BAD-NAME': 'x' } }).catch((e: unknown) => e);
  expect(isSshError(error, 'INVALID_REQUEST') && error.toBusError()).toMatchObject({ code: 'VALIDATION_ERROR', field: 'env' });
});

test('50 MB of output streams through a slow consumer with bounded memory', async () => {
  const size = 50 * 1024 * 1024;
  const line = Buffer.from('0123456789abcdef\n');
  const expected = createHash('sha256');
  for (let left = size; left > 0; left -= line.length) expected.update(left >= line.length ? line : line.subarray(0, left));

  const received = createHash('sha256');
  let bytes = 0;
  let chunks = 0;
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const result = await runner.run({
    target,
    work: { command: `yes 0123456789abcdef | head -c ${size}` },
    timeoutMs: 50_000,
    onOutput: async (chunk) => {
      received.update(chunk.data);
      bytes += chunk.data.length;
      peak = Math.max(peak, process.memoryUsage().rss);
      // A consumer that stalls: without backpressure the whole output would pile up here.
      if (chunks++ === 10) await sleep(500);
      else if (chunks % 64 === 0) await sleep(1);
    },
  });
  expect(result.status).toBe('completed');
  expect(bytes).toBe(size);
  expect(received.digest('hex')).toBe(expected.digest('hex'));
  expect(peak - baseline).toBeLessThan(100 * 1024 * 1024);
}, 55_000);

test('a command that hangs past its timeout is killed with its whole process group, even a TERM-ignoring child', async () => {
  const tag = 4000 + Math.floor(Math.random() * 999);
  const { result, stdout } = await run(
    { command: `echo started; (trap '' TERM; sleep ${tag}1) & sleep ${tag}2; echo never` },
    { timeoutMs: 1_000 },
  );
  expect(result).toMatchObject({ status: 'timed_out', reason: 'timed out after 1000 ms', exitCode: null, signal: 'TERM' });
  expect(result.cleanup).toMatchObject({ signal: 'KILL', verified: true });
  expect(result.cleanup?.pgid).toBeGreaterThan(1);
  expect(stdout).toBe('started\n');
  expect(await remoteProcesses(fleet.servers[0]!, `sleep ${tag}`)).toEqual([]);
});

test('a command that exits but leaves a process holding its output open is not done until the timeout kills it', async () => {
  const tag = 6000 + Math.floor(Math.random() * 999);
  const { result, stdout } = await run({ command: `sleep ${tag} & echo done` }, { timeoutMs: 1_000 });
  expect(result).toMatchObject({ status: 'timed_out', exitCode: 0 });
  expect(result.cleanup).toMatchObject({ signal: 'TERM', verified: true });
  expect(stdout).toBe('done\n');
  expect(await remoteProcesses(fleet.servers[0]!, `sleep ${tag}`)).toEqual([]);
});

test('cancel while running stops the command and its remote processes', async () => {
  const tag = 5000 + Math.floor(Math.random() * 999);
  const controller = new AbortController();
  const started = Date.now();
  const { result } = await run(
    { command: `sleep ${tag}1 & echo started; sleep ${tag}2` },
    {
      signal: controller.signal,
      onOutput: (chunk) => {
        if (chunk.data.toString().includes('started')) controller.abort();
      },
    },
  );
  expect(result).toMatchObject({ status: 'canceled', reason: 'canceled while running' });
  expect(result.cleanup).toMatchObject({ signal: 'TERM', verified: true });
  expect(Date.now() - started).toBeLessThan(5_000);
  expect(await remoteProcesses(fleet.servers[0]!, `sleep ${tag}`)).toEqual([]);
});

test('a consumer that fails stops the command and fails the run', async () => {
  const { result } = await run({ command: 'while true; do echo tick; sleep 0.05; done' }, {
    onOutput: () => {
      throw new Error('LOGS stream unavailable');
    },
  });
  expect(result).toMatchObject({ status: 'failed', reason: 'the output could not be delivered: LOGS stream unavailable' });
  expect(result.cleanup?.verified).toBe(true);
});
