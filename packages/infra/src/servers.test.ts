import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNats } from './nats.js';
import { isPortOpen } from './process.js';
import { startRedis } from './redis.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rh-infra-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Both listen before they write their pid file: under load a stop right after the start found no
// file and left the server running (a test then talked to a Redis it had "stopped").
test('a Redis whose pid file is not there yet is stopped all the same', async () => {
  const dataDir = join(dir, 'redis');
  const redis = await startRedis({ dataDir });
  rmSync(join(dataDir, 'redis.pid'), { force: true });
  await redis.stop();
  expect(await isPortOpen(redis.port)).toBe(false);
});

test('a NATS server whose pid file is not there yet is stopped all the same', async () => {
  const dataDir = join(dir, 'nats');
  const nats = await startNats({ dataDir });
  rmSync(join(dataDir, 'nats.pid'), { force: true });
  await nats.stop();
  expect(await isPortOpen(nats.port)).toBe(false);
});
