import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { assertPortFree, freePort, isPortOpen, readPid, requireBinary, spawnDaemon, stopPid, waitFor } from './process.js';

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  /** Kills the server hard, as a crash would. */
  kill(): Promise<void>;
  /** Starts it again on the same port and store directory. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

const NATS_BIN = '/usr/sbin/nats-server';

export async function startNats(options: { dataDir: string; port?: number; host?: string }): Promise<NatsServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort(host));
  const storeDir = join(options.dataDir, 'jetstream');
  const pidFile = join(options.dataDir, 'nats.pid');
  mkdirSync(storeDir, { recursive: true });
  requireBinary(NATS_BIN, 'nats-server');

  // nats-server may listen before it writes its pid file: a stop right after the start must not miss it.
  let pid: number | undefined;
  const start = async () => {
    await assertPortFree(port, 'NATS', host);
    pid = spawnDaemon(NATS_BIN, ['-js', '-sd', storeDir, '-P', pidFile, '-a', host, '-p', String(port), '-l', join(options.dataDir, 'nats.log')]);
    await waitFor(`NATS on ${host}:${port}`, () => isPortOpen(port, host));
  };
  await start();
  return {
    url: `nats://${host}:${port}`,
    port,
    start,
    kill: () => stopPid(readPid(pidFile) ?? pid, 5_000, 'SIGKILL'),
    stop: () => stopPid(readPid(pidFile) ?? pid),
  };
}
