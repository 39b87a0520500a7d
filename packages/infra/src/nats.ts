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

export interface NatsOptions {
  dataDir: string;
  port?: number;
  host?: string;
  /**
   * nats-server's GOMAXPROCS: GOMAXPROCS from the environment, else 1. The
   * platform's processes share a machine's cores, and one thread carries this
   * message rate (≈ 6 % of a core at 300 jobs/s) without handing goroutines
   * between cores, which cost every process on the machine CPU (bench/README.md §5).
   */
  maxProcs?: number;
}

export async function startNats(options: NatsOptions): Promise<NatsServer> {
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
    pid = spawnDaemon(NATS_BIN, ['-js', '-sd', storeDir, '-P', pidFile, '-a', host, '-p', String(port), '-l', join(options.dataDir, 'nats.log')], {
      env: { ...process.env, GOMAXPROCS: String(options.maxProcs ?? process.env.GOMAXPROCS ?? 1) },
    });
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
