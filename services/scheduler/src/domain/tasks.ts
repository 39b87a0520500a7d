import { randomUUID } from 'node:crypto';
import { BusError } from '@runnerhub/bus';
import { GroupCommit } from '@runnerhub/service-kit';
import type pg from 'pg';
import type { SchedulerDb } from '../adapters/database.js';
import { insertTasks, type NewTask } from '../adapters/task-inserts.js';
import type { Prisma, Task } from '../generated/prisma/client.js';
import type { TargetServer } from './access.js';
import { splitWords } from './shell.js';

export type TaskRecord = Task;
export type TaskStatusName = 'queued' | 'running' | 'completed' | 'failed' | 'canceled' | 'timed_out';
export const FINAL_STATUSES: readonly TaskStatusName[] = ['completed', 'failed', 'canceled', 'timed_out'];
const STATUSES: readonly TaskStatusName[] = ['queued', 'running', ...FINAL_STATUSES];
const SHELLS = /^(\/[A-Za-z0-9_./-]+\/)?(sh|bash|dash|zsh|ksh|mksh|ash|python|python3|perl|ruby|node)$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const DEFAULT_TIMEOUT_SECONDS = 300;
const MAX_TIMEOUT_SECONDS = 7 * 24 * 3600;
export const DEFAULT_PRIORITY = 5;

export interface TaskInput {
  kind: 'command' | 'script';
  command: string;
  args: readonly string[];
  argsText: string;
  script: string;
  shell: string;
  env: Readonly<Record<string, string>>;
  timeoutSeconds: number;
  priority: number;
  safeToRetry: boolean;
}

export interface TaskQuery {
  page: number;
  limit: number;
  status: string;
  serverUid: string;
  search: string;
  sortBy: string;
  sortOrder: string;
}

export interface TaskStats {
  total: number;
  queued: number;
  running: number;
  completed: number;
  failed: number;
  canceled: number;
  averageDurationSeconds: number;
  lastHour: number;
}

function validate(input: TaskInput) {
  if (input.kind === 'command') {
    if (!input.command.trim()) throw BusError.validation('command is required', 'command');
    if (input.command.length > 65_536) throw BusError.validation('command is too long', 'command');
  } else {
    if (!input.script.trim()) throw BusError.validation('script is required', 'script');
    if (input.script.length > 1_048_576) throw BusError.validation('script is larger than 1 MiB', 'script');
    if (input.shell && !SHELLS.test(input.shell)) throw BusError.validation('shell must be sh, bash, dash, zsh, ksh, mksh, ash, python, python3, perl, ruby or node', 'shell');
  }
  const args = input.args.length > 0 ? [...input.args] : splitWords(input.argsText);
  const timeoutSeconds = input.timeoutSeconds || DEFAULT_TIMEOUT_SECONDS;
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > MAX_TIMEOUT_SECONDS) throw BusError.validation(`timeout must be between 1 and ${MAX_TIMEOUT_SECONDS} seconds`, 'timeout');
  if (!Number.isInteger(input.priority) || input.priority < 0 || input.priority > 9) throw BusError.validation('priority must be between 0 and 9', 'priority');
  for (const name of Object.keys(input.env)) if (!ENV_NAME.test(name)) throw BusError.validation(`environment variable name ${JSON.stringify(name)} is not a shell name`, 'env');
  return {
    kind: input.kind,
    command: input.kind === 'command' ? input.command : '',
    args: input.kind === 'command' ? args : [],
    argsText: input.kind === 'command' ? (input.argsText || args.join(' ')) : '',
    script: input.kind === 'script' ? input.script : '',
    shell: input.kind === 'script' ? input.shell || '/bin/bash' : '',
    env: { ...input.env },
    timeoutSeconds,
    priority: input.priority,
    safeToRetry: input.safeToRetry,
  };
}

/** The ordering NewRemora documents, with a stable tiebreak. */
function orderOf(query: TaskQuery): Prisma.TaskOrderByWithRelationInput[] {
  const direction: Prisma.SortOrder = query.sortOrder === 'asc' ? 'asc' : 'desc';
  const nullable = { sort: direction, nulls: 'last' } as const;
  const primary: Prisma.TaskOrderByWithRelationInput =
    query.sortBy === 'started_at' ? { startedAt: nullable } : query.sortBy === 'finished_at' ? { endedAt: nullable } : { createdAt: direction };
  return [primary, { number: direction }];
}

/** Tasks of one organisation; callers pass an organisation they are already authorised in. */
export class Tasks {
  /** Submissions arriving together are stored in one INSERT: one round trip and one commit for many tasks. */
  private readonly inserts: GroupCommit<NewTask, TaskRecord>;

  constructor(
    private readonly db: SchedulerDb,
    pool: pg.Pool,
  ) {
    this.inserts = new GroupCommit((rows) => insertTasks(pool, rows));
  }

  /** Stored as queued before anyone hears of it: a 2xx means the task will run or end with a reason. */
  async submit(organizationId: string, createdBy: string, server: TargetServer, input: TaskInput, duplicatedFrom?: string): Promise<TaskRecord> {
    const fields = validate(input);
    return this.inserts.submit({
      id: randomUUID(),
      organizationId,
      serverId: server.uid,
      serverName: server.name,
      serverHostname: server.hostname,
      serverPort: server.port,
      serverUsername: server.username,
      hostKeyFingerprint: server.hostKeyFingerprint,
      serverMaxSessions: server.maxSessions,
      ...fields,
      createdBy,
      duplicatedFrom: duplicatedFrom ?? null,
    });
  }

  async get(organizationId: string, uid: string): Promise<TaskRecord> {
    if (!/^[0-9a-fA-F-]{36}$/.test(uid)) throw BusError.notFound('job');
    const task = await this.db.task.findFirst({ where: { id: uid, organizationId } });
    if (!task) throw BusError.notFound('job');
    return task;
  }

  async list(organizationId: string, query: TaskQuery): Promise<{ tasks: TaskRecord[]; total: number }> {
    const where: Prisma.TaskWhereInput = { organizationId };
    if (query.status) {
      const status = query.status === 'cancelled' ? 'canceled' : query.status;
      if (!STATUSES.includes(status as TaskStatusName)) throw BusError.validation(`status must be one of ${STATUSES.join(', ')}`, 'status');
      where.status = status as TaskStatusName;
    }
    if (query.serverUid) {
      if (!/^[0-9a-fA-F-]{36}$/.test(query.serverUid)) return { tasks: [], total: 0 };
      where.serverId = query.serverUid;
    }
    const search = query.search.trim();
    if (search) {
      where.OR = [
        { command: { contains: search, mode: 'insensitive' } },
        { argsText: { contains: search, mode: 'insensitive' } },
        { script: { contains: search, mode: 'insensitive' } },
      ];
    }
    const [tasks, total] = await Promise.all([
      this.db.task.findMany({ where, orderBy: orderOf(query), skip: (query.page - 1) * query.limit, take: query.limit }),
      this.db.task.count({ where }),
    ]);
    return { tasks, total };
  }

  async stats(organizationId: string): Promise<TaskStats> {
    const [groups, durations, lastHour] = await Promise.all([
      this.db.task.groupBy({ by: ['status'], where: { organizationId }, _count: { _all: true } }),
      this.db.$queryRaw<Array<{ average: number | null }>>`
        SELECT avg(extract(epoch FROM ended_at - started_at))::float8 AS average
        FROM tasks WHERE organization_id = ${organizationId}::uuid AND started_at IS NOT NULL AND ended_at IS NOT NULL`,
      this.db.task.count({ where: { organizationId, createdAt: { gte: new Date(Date.now() - 3_600_000) } } }),
    ]);
    const count = (status: TaskStatusName) => groups.find((g) => g.status === status)?._count._all ?? 0;
    return {
      total: groups.reduce((sum, g) => sum + g._count._all, 0),
      queued: count('queued'),
      running: count('running'),
      completed: count('completed'),
      failed: count('failed') + count('timed_out'),
      canceled: count('canceled'),
      averageDurationSeconds: Math.round((durations[0]?.average ?? 0) * 10) / 10,
      lastHour,
    };
  }
}
