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

  /** True when the report changed the task. */
  async apply(report: StatusReport): Promise<boolean> {
    if (!/^[0-9a-fA-F-]{36}$/.test(report.taskUid)) return false;
    if (report.status === 'queued') return false;
    if (report.status === 'running') {
      const result = await this.pool.query(
        `UPDATE tasks SET status = 'running', started_at = COALESCE($3, started_at, now()),
           executor_id = CASE WHEN $4 = '' THEN executor_id ELSE $4 END, updated_at = now()
         WHERE id = $1 AND attempt = $2 AND status = 'queued'`,
        [report.taskUid, report.attempt, report.startedAt ?? null, report.executorId],
      );
      return (result.rowCount ?? 0) > 0;
    }
    const result = await this.pool.query(
      `UPDATE tasks SET status = $3::"TaskStatus", exit_code = $4, reason_code = $5, reason = $6,
         started_at = COALESCE(started_at, $7), ended_at = COALESCE($8, now()),
         executor_id = CASE WHEN $9 = '' THEN executor_id ELSE $9 END, output_chunks = $10, updated_at = now()
       WHERE id = $1 AND attempt = $2 AND status IN ('queued', 'running')`,
      [report.taskUid, report.attempt, report.status, report.exitCode ?? null, report.reasonCode, report.reason, report.startedAt ?? null, report.endedAt ?? null, report.executorId, report.outputChunks.toString()],
    );
    return (result.rowCount ?? 0) > 0;
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
