import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InfraError, isAlive, readPid, stopPid } from '@runnerhub/infra';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Every service, in start order; the gateway last so that it finds the rest. */
export const SERVICE_NAMES = ['identity', 'inventory', 'scheduler', 'executor', 'github-sync', 'metrics', 'gateway'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** Services that own a database: their Prisma schema lives in services/<name>/prisma. */
export function dataOwningServices(): ServiceName[] {
  return SERVICE_NAMES.filter((name) => existsSync(schemaPath(name)));
}

export function schemaPath(name: ServiceName): string {
  return join(REPO_ROOT, 'services', name, 'prisma', 'schema.prisma');
}

export function databaseName(name: ServiceName): string {
  return name.replace(/-/g, '_');
}

/** One service process, started from its built entry point with its own log and pid file. */
export class ServiceProcess {
  private child?: ChildProcess;
  /** Exit code of the last run, once it has ended (null when killed by a signal). */
  exitCode: number | null | undefined;
  readonly pidFile: string;
  readonly logFile: string;

  constructor(
    readonly name: ServiceName,
    private readonly env: NodeJS.ProcessEnv,
    private readonly dataDir: string,
    private readonly detached: boolean,
  ) {
    this.pidFile = join(dataDir, 'run', `${name}.pid`);
    this.logFile = join(dataDir, 'logs', `${name}.log`);
  }

  get pid(): number | undefined {
    return this.child?.pid ?? readPid(this.pidFile);
  }

  start(): void {
    const entry = join(REPO_ROOT, 'services', this.name, 'dist', 'main.js');
    if (!existsSync(entry)) throw new InfraError(`${entry} is missing: build first (pnpm build)`);
    mkdirSync(dirname(this.pidFile), { recursive: true });
    mkdirSync(dirname(this.logFile), { recursive: true });
    // The child writes straight to its log file: no pipe ties it to this process.
    const log = openSync(this.logFile, 'a');
    // Node flags NODE_OPTIONS refuses (e.g. --cpu-prof), for profiling a running platform.
    const nodeArgs = this.env.RH_SERVICE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
    const child = spawn(process.execPath, [...nodeArgs, entry], {
      cwd: join(REPO_ROOT, 'services', this.name),
      env: this.env,
      detached: this.detached,
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    this.exitCode = undefined;
    child.once('exit', (code) => (this.exitCode = code));
    if (this.detached) child.unref();
    if (child.pid === undefined) throw new InfraError(`could not start ${this.name}`);
    writeFileSync(this.pidFile, String(child.pid));
    this.child = child;
  }

  isRunning(): boolean {
    const pid = this.pid;
    return pid !== undefined && isAlive(pid) && this.child?.exitCode == null;
  }

  /** SIGTERM and wait: the service drains and exits on its own. */
  async stop(graceMs = 15_000): Promise<void> {
    await stopPid(this.pid, graceMs);
    this.child = undefined;
  }

  /** SIGKILL: a crash, for failure tests. */
  async kill(): Promise<void> {
    await stopPid(this.pid, 5_000, 'SIGKILL');
    this.child = undefined;
  }
}
