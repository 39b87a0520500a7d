import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runNodeScript, writeNodeModule } from '@runnerhub/infra';

// The watchdog ends the process it runs in, so each case runs in a child process.
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rh-watchdog-'));
  await writeNodeModule(new URL('./watchdog.ts', import.meta.url), join(dir, 'watchdog.mjs'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `import { startWatchdog } from './watchdog.mjs';\nstartWatchdog({ stallMs: 500, service: 'test-service' });\n${body}`);
  return path;
}

test('a process whose main thread stops for good is ended, and says why', async () => {
  const started = Date.now();
  // Blocks the main thread the way a native deadlock does: no timer or callback of it runs again.
  const run = await runNodeScript(script('stuck.mjs', 'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);'), 20_000);
  expect(run).toMatchObject({ timedOut: false, signal: 'SIGKILL' });
  expect(run.stderr).toMatch(/^test-service: the main thread has not run for \d+ ms/);
  expect(Date.now() - started).toBeLessThan(10_000);
});

test('a process that is busy but keeps running is left alone', async () => {
  // Two seconds of work in 100 ms slices (each well under the 500 ms limit), then a normal exit.
  const run = await runNodeScript(
    script(
      'busy.mjs',
      `const end = Date.now() + 2000;
      const slice = () => {
        const until = Math.min(end, Date.now() + 100);
        while (Date.now() < until);
        if (Date.now() < end) setImmediate(slice);
        else console.log('finished');
      };
      slice();`,
    ),
    20_000,
  );
  expect(run).toMatchObject({ timedOut: false, code: 0, stdout: 'finished\n', stderr: '' });
});
