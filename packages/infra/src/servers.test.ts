import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNats } from './nats.js';
import { isPortOpen, readPid, waitFor } from './process.js';
import { startRedis } from './redis.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rh-infra-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Both listen before they write their pid file: under load a stop right after the start found no
// file and left the server running (a test then talked to a Redis it had "stopped").
test.each([
  { name: 'Redis', pidFile: 'redis.pid', start: (dataDir: string) => startRedis({ dataDir }) },
  { name: 'NATS', pidFile: 'nats.pid', start: (dataDir: string) => startNats({ dataDir }) },
])('a $name server whose pid file is not there yet is stopped all the same', async ({ name, pidFile, start }) => {
  const dataDir = join(dir, name);
  const server = await start(dataDir);
  rmSync(join(dataDir, pidFile), { force: true });
  await server.stop();
  expect(await isPortOpen(server.port)).toBe(false);
});

test.each([
  { maxProcs: undefined, expected: process.env.GOMAXPROCS ?? '1' },
  { maxProcs: 2, expected: '2' },
])('nats-server runs with GOMAXPROCS=$expected when asked for $maxProcs', async ({ maxProcs, expected }) => {
  const dataDir = join(dir, `nats-procs-${expected}`);
  const server = await startNats({ dataDir, maxProcs });
  try {
    let pid: number | undefined;
    await waitFor('the pid file of nats-server', async () => (pid = readPid(join(dataDir, 'nats.pid'))) !== undefined);
    expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain(`GOMAXPROCS=${expected}`);
  } finally {
    await server.stop();
  }
});
