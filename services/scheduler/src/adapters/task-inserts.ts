import { fieldOf, recordsetJson } from '@runnerhub/database';
import type pg from 'pg';
import type { Prisma, Task } from '../generated/prisma/client.js';

export type NewTask = Prisma.TaskCreateManyInput & { id: string };

/** Columns given on insert; the rest take their defaults (number, status, created_at, …). */
const COLUMNS = [
  'id', 'organization_id', 'server_id', 'server_name', 'server_hostname', 'server_port', 'server_username', 'host_key_fingerprint', 'server_max_sessions',
  'kind', 'command', 'args', 'args_text', 'script', 'shell', 'env', 'timeout_seconds', 'priority', 'safe_to_retry', 'created_by', 'duplicated_from',
] as const;
const INSERT = `INSERT INTO tasks (${COLUMNS.join(', ')}, updated_at)
  SELECT ${COLUMNS.join(', ')}, now() FROM json_populate_recordset(NULL::tasks, $1::json)
  RETURNING *`;
const BIGINT_FIELDS = new Set(['number', 'dispatchSeq', 'outputChunks']);

/** A row of `tasks` as Prisma returns it: camelCase fields, int8 as BigInt. */
function taskOf(row: Record<string, unknown>): Task {
  const task: Record<string, unknown> = {};
  for (const column in row) {
    const field = fieldOf(column);
    const value = row[column];
    task[field] = value !== null && BIGINT_FIELDS.has(field) ? BigInt(value as string) : value;
  }
  return task as unknown as Task;
}

/**
 * Inserts many tasks in one statement straight through pg: on the submission
 * path Prisma's query compilation cost more CPU than PostgreSQL's work.
 * Returns the stored tasks in the order given.
 */
export async function insertTasks(pool: pg.Pool, tasks: NewTask[]): Promise<Task[]> {
  const { rows } = await pool.query<Record<string, unknown>>({ name: 'insert-tasks', text: INSERT, values: [recordsetJson(tasks)] });
  const stored = new Map(rows.map((row) => [row.id as string, taskOf(row)]));
  return tasks.map((task) => stored.get(task.id)!);
}
