import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { assertPortFree, execFileAsync, freePort, InfraError, isPortOpen, readPid, requireBinary, stopPid, waitFor } from './process.js';

export interface PostgresServer {
  readonly port: number;
  readonly host: string;
  /** Connection URL for a database on this server (the superuser owns it). */
  url(database: string): string;
  /** Creates the database if it does not exist yet. */
  createDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
}

const PG_BIN = '/usr/lib/postgresql/15/bin';
const SUPERUSER = 'runnerhub';
const PASSWORD = 'runnerhub';

/**
 * initdb and postgres refuse to run as root, so when we are root the cluster
 * belongs to the Debian "postgres" system user.
 */
async function asPostgres(command: string, args: string[]): Promise<{ stdout: string }> {
  if (process.getuid?.() === 0) {
    return execFileAsync('runuser', ['-u', 'postgres', '--', command, ...args]);
  }
  return execFileAsync(command, args);
}

/**
 * The postgres user must reach its data directory: grant search (not read)
 * permission on each ancestor that lacks it, e.g. a 0700 mkdtemp folder.
 */
function makeReachable(dir: string): void {
  for (let current = resolve(dir); current !== dirname(current); current = dirname(current)) {
    const mode = statSync(current).mode;
    if ((mode & 0o001) === 0) chmodSync(current, mode | 0o001);
  }
}

export async function startPostgres(options: { dataDir: string; port?: number; host?: string }): Promise<PostgresServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort(host));
  requireBinary(join(PG_BIN, 'initdb'), 'postgresql');
  const pgData = join(options.dataDir, 'pgdata');
  const socketDir = join(options.dataDir, 'socket');
  mkdirSync(socketDir, { recursive: true });
  if (process.getuid?.() === 0) {
    const { stdout } = await execFileAsync('id', ['-u', 'postgres']).catch(() => {
      throw new InfraError('the "postgres" system user is missing: install the Debian package "postgresql"');
    });
    const uid = Number(stdout.trim());
    const gid = Number((await execFileAsync('id', ['-g', 'postgres'])).stdout.trim());
    chownSync(options.dataDir, uid, gid);
    chownSync(socketDir, uid, gid);
    makeReachable(options.dataDir);
  }
  if (!existsSync(join(pgData, 'PG_VERSION'))) {
    const pwFile = join(options.dataDir, 'pwfile');
    await execFileAsync('sh', ['-c', `printf '%s' '${PASSWORD}' > '${pwFile}' && chmod 644 '${pwFile}'`]);
    await asPostgres(join(PG_BIN, 'initdb'), ['-D', pgData, '-U', SUPERUSER, '--pwfile', pwFile, '-A', 'scram-sha-256', '-E', 'UTF8', '--no-sync']);
  }
  await assertPortFree(port, 'PostgreSQL', host);
  await asPostgres(join(PG_BIN, 'pg_ctl'), [
    '-D', pgData, '-l', join(options.dataDir, 'postgres.log'), '-w', '-t', '60',
    '-o', `-p ${port} -k ${socketDir} -h ${host} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300`,
    'start',
  ]);
  await waitFor(`PostgreSQL on ${host}:${port}`, () => isPortOpen(port, host));

  const psql = (sql: string) =>
    execFileAsync(join(PG_BIN, 'psql'), ['-h', host, '-p', String(port), '-U', SUPERUSER, '-d', 'postgres', '-tAc', sql], {
      env: { ...process.env, PGPASSWORD: PASSWORD },
    });

  return {
    port,
    host,
    url: (database) => `postgresql://${SUPERUSER}:${PASSWORD}@${host}:${port}/${database}`,
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new InfraError(`invalid database name ${name}`);
      const { stdout } = await psql(`SELECT 1 FROM pg_database WHERE datname = '${name}'`);
      if (stdout.trim() !== '1') await psql(`CREATE DATABASE ${name}`);
    },
    async stop() {
      await stopPid(readPid(join(pgData, 'postmaster.pid')), 15_000, 'SIGINT');
    },
  };
}

export interface ThrowawayPostgres {
  server: PostgresServer;
  /** A new, empty database; returns its URL. */
  freshDatabase(prefix?: string): Promise<string>;
  /** Stops the server and removes its directory. */
  dispose(): Promise<void>;
}

/** A PostgreSQL of its own for one test file, in a temporary directory. */
export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rh-pg-'));
  const server = await startPostgres({ dataDir });
  let databases = 0;
  return {
    server,
    async freshDatabase(prefix = 'db') {
      const name = `${prefix}_${++databases}`;
      await server.createDatabase(name);
      return server.url(name);
    },
    async dispose() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
