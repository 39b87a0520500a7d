#!/usr/bin/env node
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { InfraError, isAlive, readPid, stopPid } from '@runnerhub/infra';
import { REPO_ROOT } from './services.js';
import { ADMIN, startStack } from './stack.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { 'data-dir': { type: 'string', default: join(REPO_ROOT, '.data') } },
});
const dataDir = values['data-dir']!;

/** Every pid file the stack writes, services first so they drain before NATS goes. */
function pidFiles(): Array<{ name: string; file: string; signal: NodeJS.Signals }> {
  const runDir = join(dataDir, 'run');
  const services = existsSync(runDir) ? readdirSync(runDir).filter((f) => f.endsWith('.pid')) : [];
  return [
    ...services.sort((a, b) => (a === 'gateway.pid' ? -1 : b === 'gateway.pid' ? 1 : 0)).map((f) => ({ name: f.replace(/\.pid$/, ''), file: join(runDir, f), signal: 'SIGTERM' as const })),
    { name: 'redis', file: join(dataDir, 'redis', 'redis.pid'), signal: 'SIGTERM' },
    { name: 'postgres', file: join(dataDir, 'postgres', 'pgdata', 'postmaster.pid'), signal: 'SIGINT' },
    { name: 'nats', file: join(dataDir, 'nats', 'nats.pid'), signal: 'SIGTERM' },
  ];
}

async function down(): Promise<void> {
  for (const { name, file, signal } of pidFiles()) {
    const pid = readPid(file);
    if (pid !== undefined && isAlive(pid)) {
      await stopPid(pid, 15_000, signal);
      console.log(`stopped ${name}`);
    }
  }
}

function status(): void {
  for (const { name, file } of pidFiles()) {
    const pid = readPid(file);
    console.log(`${name.padEnd(12)} ${pid !== undefined && isAlive(pid) ? `running (pid ${pid})` : 'stopped'}`);
  }
}

async function up(): Promise<void> {
  if (pidFiles().some(({ file }) => { const pid = readPid(file); return pid !== undefined && isAlive(pid); })) {
    throw new InfraError(`a stack is already running from ${dataDir}: run "./rh down" first`);
  }
  const stack = await startStack({
    dataDir,
    detached: true,
    ports: { nats: 14222, postgres: 15432, redis: 16379, gateway: Number(process.env.HTTP_PORT ?? 3001), metricsBase: 9411 },
    env: { ADMIN_PASSWORD: process.env.ADMIN_PASSWORD ?? ADMIN.password, HTTP_HOST: process.env.HTTP_HOST ?? '127.0.0.1' },
  });
  try {
    await stack.waitHealthy(60_000);
  } catch (error) {
    await down();
    throw error;
  }
  console.log(`RunnerHub is running.
  gateway:    ${stack.gatewayUrl}   (health: ${stack.gatewayUrl}/health, metrics: ${stack.gatewayUrl}/metrics)
  admin:      ${ADMIN.username} / ${process.env.ADMIN_PASSWORD ?? ADMIN.password}
  NATS:       ${stack.nats.url}
  PostgreSQL: ${stack.postgres.url('identity').replace(/:[^:@]+@/, ':****@')}
  Redis:      ${stack.redis.url}
  logs:       ${join(dataDir, 'logs')}
Stop it with: ./rh down`);
}

const commands: Record<string, () => Promise<void> | void> = { up, down, status };
const command = commands[positionals[0] ?? ''];
if (!command) {
  console.error('usage: rh-stack up|down|status [--data-dir DIR]');
  process.exit(2);
}
try {
  await command();
} catch (error) {
  // Failures the user can act on are one clear line, not a stack trace.
  console.error(`error: ${error instanceof InfraError ? error.message : (error as Error).message}`);
  process.exit(1);
}
