import { spawn, execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { promisify } from 'node:util';

export const execFileAsync = promisify(execFile);

/**
 * A port nobody listens on, chosen below Linux's ephemeral range (32768+):
 * a port the kernel hands out there can be taken by any outgoing connection
 * before our server binds it, which happened under load.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListen(port, host)) return port;
  }
  throw new InfraError('no free port found between 20000 and 32000');
}

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

export async function isPortOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new InfraError(`${what} did not become ready within ${timeoutMs} ms`);
}

/** A clear, stack-free failure the stack CLI prints as-is. */
export class InfraError extends Error {
  override name = 'InfraError';
}

export function requireBinary(path: string, debianPackage: string): string {
  if (!existsSync(path)) {
    throw new InfraError(`${path} is missing: install the Debian package "${debianPackage}" (./rh setup does this)`);
  }
  return path;
}

export async function assertPortFree(port: number, what: string, host = '127.0.0.1'): Promise<void> {
  if (await isPortOpen(port, host)) {
    throw new InfraError(`port ${port} on ${host} is already taken, so ${what} cannot start there; stop what holds it or choose another port`);
  }
}

/** Starts a daemon detached from this process so it outlives a CLI that started it. */
export function spawnDaemon(command: string, args: string[], options: { logFile?: string; uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {}): number {
  const child = spawn(command, args, {
    detached: true,
    stdio: 'ignore',
    uid: options.uid,
    gid: options.gid,
    env: options.env ?? process.env,
  });
  child.unref();
  if (child.pid === undefined) throw new InfraError(`could not start ${command}`);
  return child.pid;
}

export function readPid(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
  return Number.isFinite(pid) ? pid : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops a process by pid: SIGTERM, then SIGKILL after the grace period. */
export async function stopPid(pid: number | undefined, graceMs = 10_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (pid === undefined || !isAlive(pid)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}
