import type pg from 'pg';
import type { TaskStatusName } from './tasks.js';

/** Every queued or running task is held by this one lock while the dispatcher releases it (or a cancel takes it back). */
export const DISPATCH_LOCK = 0x52_48_53_43; // "RHSC"

export interface StatusReport {
  taskUid: string;
  attempt: number;
  status: TaskStatusName;
  exitCode?: number;
  reasonCode: string;
  reason: string;
  startedAt?: Date;
  endedAt?: Date;
  executorId: string;
  outputChunks: bigint;
}

export interface LostTask {
  uid: string;
  organizationUid: string;
  attempt: number;
  requeued: boolean;
  executorId: string;
  /** JOBS sequence of the lost attempt's dispatch, to withdraw so that JetStream does not hand it out again. */
  dispatchSeq: bigint | null;
}

/**
 * The task state machine in single conditional statements, so that any
 * number of scheduler instances can apply the same report, in any order, any
 * number of times: queued → running → one final status; a final status never
 * changes; a report of another attempt is ignored.
 */
export class Lifecycle {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Applies reports in two statements, one for RUNNING and one for final
   * statuses; returns the uids of the tasks they changed. Reports must come
   * in stream order: of one task's reports, the first final one wins and a
   * RUNNING before it adds nothing (the final report carries started_at).
   */
  async applyAll(reports: readonly StatusReport[]): Promise<Set<string>> {
    const finals = new Map<string, StatusReport>();
    const running = new Map<string, StatusReport>();
    for (const report of reports) {
      if (!/^[0-9a-fA-F-]{36}$/.test(report.taskUid) || report.status === 'queued') continue;
      const key = `${report.taskUid.toLowerCase()}.${report.attempt}`;
      if (report.status === 'running') {
        if (!finals.has(key) && !running.has(key)) running.set(key, report);
      } else if (!finals.has(key)) {
        finals.set(key, report);
        running.delete(key);
      }
    }
    const changed = new Set<string>();
    const rowsOf = (list: Iterable<StatusReport>) =>
      JSON.stringify([...list].map((r) => ({
        id: r.taskUid, attempt: r.attempt, status: r.status, exit_code: r.exitCode ?? null, reason_code: r.reasonCode, reason: r.reason,
        started_at: r.startedAt?.toISOString() ?? null, ended_at: r.endedAt?.toISOString() ?? null, executor_id: r.executorId, output_chunks: r.outputChunks.toString(),
      })));
    // Named statements: PostgreSQL plans each once per connection.
    if (finals.size > 0) {
      const { rows } = await this.pool.query<{ id: string }>({
        name: 'apply-finals',
        text: `UPDATE tasks t SET status = d.status::"TaskStatus", exit_code = d.exit_code, reason_code = d.reason_code, reason = d.reason,
                 started_at = COALESCE(t.started_at, d.started_at), ended_at = COALESCE(d.ended_at, now()),
                 executor_id = CASE WHEN d.executor_id = '' THEN t.executor_id ELSE d.executor_id END, output_chunks = d.output_chunks, updated_at = now()
               FROM json_to_recordset($1::json) AS d(id uuid, attempt int, status text, exit_code int, reason_code text, reason text,
                 started_at timestamptz, ended_at timestamptz, executor_id text, output_chunks bigint)
               WHERE t.id = d.id AND t.attempt = d.attempt AND t.status IN ('queued', 'running')
               RETURNING t.id`,
        values: [rowsOf(finals.values())],
      });
      for (const row of rows) changed.add(row.id);
    }
    if (running.size > 0) {
      const { rows } = await this.pool.query<{ id: string }>({
        name: 'apply-running',
        text: `UPDATE tasks t SET status = 'running', started_at = COALESCE(d.started_at, t.started_at, now()),
                 executor_id = CASE WHEN d.executor_id = '' THEN t.executor_id ELSE d.executor_id END, updated_at = now()
               FROM json_to_recordset($1::json) AS d(id uuid, attempt int, started_at timestamptz, executor_id text)
               WHERE t.id = d.id AND t.attempt = d.attempt AND t.status = 'queued'
               RETURNING t.id`,
        values: [rowsOf(running.values())],
      });
      for (const row of rows) changed.add(row.id);
    }
    return changed;
  }

  /**
   * A queued task ends canceled at once, under the dispatcher's lock so that
   * it is never released while it is being canceled. Returns the JOBS
   * sequence of its dispatch when it had one (to withdraw), or null when the
   * task was not queued.
   */
  async cancelQueued(uid: string, requestedBy: string): Promise<{ dispatchSeq: bigint | null; attempt: number } | null> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [DISPATCH_LOCK]);
      const { rows } = await client.query<{ dispatch_seq: string | null; attempt: number }>(
        `UPDATE tasks SET status = 'canceled', reason_code = 'canceled', reason = $2, ended_at = now(), cancel_requested_at = now(), updated_at = now()
         WHERE id = $1 AND status = 'queued' RETURNING dispatch_seq, attempt`,
        [uid, `canceled by ${requestedBy || 'a user'} before it started`],
      );
      await client.query('COMMIT');
      const row = rows[0];
      return row ? { dispatchSeq: row.dispatch_seq === null ? null : BigInt(row.dispatch_seq), attempt: row.attempt } : null;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** Records that a running task's executor was asked to stop it; its status follows the executor's report. */
  async markCancelRequested(uid: string): Promise<boolean> {
    const result = await this.pool.query(`UPDATE tasks SET cancel_requested_at = COALESCE(cancel_requested_at, now()), updated_at = now() WHERE id = $1 AND status = 'running'`, [uid]);
    return (result.rowCount ?? 0) > 0;
  }

  /** Running tasks with the executor running them and when the scheduler last heard of them. */
  async running(): Promise<Array<{ uid: string; attempt: number; executorId: string; since: Date }>> {
    const { rows } = await this.pool.query<{ id: string; attempt: number; executor_id: string; updated_at: Date }>(`SELECT id, attempt, executor_id, updated_at FROM tasks WHERE status = 'running'`);
    return rows.map((r) => ({ uid: r.id, attempt: r.attempt, executorId: r.executor_id, since: r.updated_at }));
  }

  /** The executor of a running task is gone: re-queue the task (next attempt) when it is safe to retry, else fail it. */
  async lose(uid: string, attempt: number, executorId: string): Promise<LostTask | null> {
    const reason = `executor ${executorId || '(unknown)'} stopped sending heartbeats`;
    const { rows } = await this.pool.query<{ organization_id: string; attempt: number; status: string; old_seq: string | null }>(
      `UPDATE tasks t SET
         status = CASE WHEN safe_to_retry THEN 'queued'::"TaskStatus" ELSE 'failed'::"TaskStatus" END,
         attempt = CASE WHEN safe_to_retry THEN attempt + 1 ELSE attempt END,
         dispatched_at = CASE WHEN safe_to_retry THEN NULL ELSE dispatched_at END,
         dispatch_seq = CASE WHEN safe_to_retry THEN NULL ELSE dispatch_seq END,
         started_at = CASE WHEN safe_to_retry THEN NULL ELSE started_at END,
         ended_at = CASE WHEN safe_to_retry THEN NULL ELSE now() END,
         executor_id = CASE WHEN safe_to_retry THEN '' ELSE executor_id END,
         reason_code = 'executor_lost', reason = $3, updated_at = now()
       FROM (SELECT id, dispatch_seq AS old_seq FROM tasks WHERE id = $1 FOR UPDATE) o
       WHERE t.id = o.id AND t.attempt = $2 AND t.status = 'running'
       RETURNING t.organization_id, t.attempt, t.status, o.old_seq`,
      [uid, attempt, reason],
    );
    const row = rows[0];
    return row ? { uid, organizationUid: row.organization_id, attempt: row.attempt, requeued: row.status === 'queued', executorId, dispatchSeq: row.old_seq === null ? null : BigInt(row.old_seq) } : null;
  }
}
