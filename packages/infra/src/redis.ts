import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { assertPortFree, freePort, isPortOpen, readPid, requireBinary, spawnDaemon, stopPid, waitFor } from './process.js';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

const REDIS_BIN = '/usr/bin/redis-server';

export async function startRedis(options: { dataDir: string; port?: number; host?: string }): Promise<RedisServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort(host));
  mkdirSync(options.dataDir, { recursive: true });
  requireBinary(REDIS_BIN, 'redis-server');
  await assertPortFree(port, 'Redis', host);
  const pidFile = join(options.dataDir, 'redis.pid');
  const pid = spawnDaemon(REDIS_BIN, [
    '--port', String(port), '--bind', host, '--save', '', '--appendonly', 'no',
    '--dir', options.dataDir, '--pidfile', pidFile, '--logfile', join(options.dataDir, 'redis.log'),
  ]);
  await waitFor(`Redis on ${host}:${port}`, () => isPortOpen(port, host));
  // Redis may listen before it writes its pid file: a stop right after the start must not miss it.
  return { url: `redis://${host}:${port}`, port, stop: () => stopPid(readPid(pidFile) ?? pid) };
}
