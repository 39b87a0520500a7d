import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { Bus, BusLogger } from '@runnerhub/bus';
import { executorV1 } from '@runnerhub/contracts';
import type pg from 'pg';
import { DISPATCH_LOCK } from '../domain/lifecycle.js';
import { commandLine } from '../domain/shell.js';

/** A task attempt that an executor reported ended. */
export interface EndedAttempt {
  id: string;
  attempt: number;
}

export interface DispatcherOptions {
  /** Tasks in JOBS or running at once, across every server. */
  maxConcurrent: number;
  /** Per server, when its record sets no max_sessions. */
  perServerConcurrency: number;
  intervalMs: number;
  batch: number;
  /**
   * Attempts reported ended whose rows may still say otherwise (the report
   * is being written): their slots are free already, and a pass does not
   * wait for the write to use them.
   */
  endedUnwritten: () => readonly EndedAttempt[];
}

interface QueuedRow {
  id: string;
  organization_id: string;
  server_id: string;
  server_hostname: string;
  server_port: number;
  server_username: string;
  host_key_fingerprint: string;
  server_max_sessions: number;
  kind: 'command' | 'script';
  command: string;
  args: string[];
  script: string;
  shell: string;
  env: Record<string, string>;
  timeout_seconds: number;
  priority: number;
  attempt: number;
  safe_to_retry: boolean;
  created_at: Date;
}

/** The subject an executor consumes a dispatch for this server on. */
export const dispatchSubject = (serverUid: string) => `jobs.ssh.${serverUid}`;
/** JetStream drops a second publish with the same id: a dispatcher restarted mid-pass never dispatches twice. */
export const dispatchMsgId = (taskUid: string, attempt: number) => `${taskUid}.${attempt}`;

export function dispatchOf(row: QueuedRow): executorV1.JobDispatch {
  return create(executorV1.JobDispatchSchema, {
    jobId: row.id,
    organizationUid: row.organization_id,
    attempt: row.attempt,
    priority: row.priority,
    target: {
      serverId: row.server_id,
      host: row.server_hostname,
      port: row.server_port,
      username: row.server_username,
      // A server holds one credential, named by the server; the executor resolves it through inventory.
      credentialId: row.server_id,
      credentialVersion: 0,
      hostKeyFingerprint: row.host_key_fingerprint,
      maxSessions: row.server_max_sessions,
    },
    work: row.kind === 'command' ? { case: 'command', value: { command: commandLine(row.command, row.args) } } : { case: 'script', value: { script: row.script, shell: row.shell } },
    timeoutMs: row.timeout_seconds * 1000,
    env: row.env,
    safeToRetry: row.safe_to_retry,
    acceptedAt: timestampFromDate(row.created_at),
  });
}

/**
 * The pass's two statements, prepared once per connection. The busy slots per
 * server (less the attempts reported ended, $4 and $5) come with the
 * candidates, as JSON on every row (and on one row of NULLs when there is no
 * candidate), counted in two index scans (an OR would need a bitmap scan).
 * Per server, no more candidates than its limit (its first candidate's
 * max_sessions, or the default); then priority order across servers; none at
 * all when every slot is busy. The servers with queued tasks come from a skip
 * scan of the dispatcher's index (one probe per server), so a pass costs the
 * same with ten queued tasks or ten thousand.
 */
const PREPARE_STATEMENTS = `PREPARE dispatch_candidates(int, int, int, uuid[], int[]) AS
  WITH RECURSIVE active AS (
    SELECT server_id, count(*)::int AS n FROM (
      SELECT server_id, id, attempt FROM tasks WHERE status = 'running'
      UNION ALL
      SELECT server_id, id, attempt FROM tasks WHERE status = 'queued' AND dispatched_at IS NOT NULL
    ) busy WHERE (id, attempt) NOT IN (SELECT * FROM unnest($4, $5)) GROUP BY server_id
  ), free AS (
    SELECT $3::int - COALESCE((SELECT sum(n) FROM active), 0)::int AS slots
  ), waiting(server_id) AS (
    (SELECT server_id FROM tasks WHERE status = 'queued' AND dispatched_at IS NULL ORDER BY server_id LIMIT 1)
    UNION ALL
    SELECT (SELECT t.server_id FROM tasks t WHERE t.status = 'queued' AND t.dispatched_at IS NULL AND t.server_id > w.server_id ORDER BY t.server_id LIMIT 1)
    FROM waiting w WHERE w.server_id IS NOT NULL
  ), candidates AS (
    SELECT q.* FROM waiting w CROSS JOIN LATERAL (
      SELECT * FROM tasks t WHERE t.status = 'queued' AND t.dispatched_at IS NULL AND t.server_id = w.server_id
      ORDER BY t.priority DESC, t.created_at, t.number
      LIMIT COALESCE(NULLIF((
        SELECT f.server_max_sessions FROM tasks f WHERE f.status = 'queued' AND f.dispatched_at IS NULL AND f.server_id = w.server_id
        ORDER BY f.priority DESC, f.created_at, f.number LIMIT 1), 0), $1)
    ) q
    ORDER BY q.priority DESC, q.created_at, q.number
    LIMIT GREATEST(0, LEAST((SELECT slots FROM free) * 4, $2))
  )
  SELECT c.*, (SELECT json_object_agg(server_id, n) FROM active) AS busy_slots
  FROM (SELECT 1) one LEFT JOIN candidates c ON true;
PREPARE dispatch_record(uuid[], int[], bigint[]) AS
  UPDATE tasks t SET dispatched_at = now(), dispatch_seq = d.seq, updated_at = now()
  FROM unnest($1, $2, $3) AS d(id, attempt, seq)
  WHERE t.id = d.id AND t.attempt = d.attempt AND t.status = 'queued'`;

/** Connections of the pool that have the pass's statements prepared. */
const preparedOn = new WeakSet<pg.PoolClient>();

function int(value: number): string {
  if (!Number.isSafeInteger(value)) throw new Error(`${value} is not an integer`);
  return String(value);
}

function uuid(value: string): string {
  if (!/^[0-9a-fA-F-]{36}$/.test(value)) throw new Error(`${value} is not a uuid`);
  return value;
}

/**
 * Releases queued tasks to JOBS, highest priority first (oldest first within
 * a priority), within the global and per-server limits. One pass holds a
 * PostgreSQL advisory lock, so several scheduler instances never release the
 * same task twice; a pass publishes with msgID <task>.<attempt> before it
 * records the release, so a crash in between repeats the publish, which
 * JetStream drops as a duplicate.
 */
export class Dispatcher {
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private pending = false;
  /** What the last pass left without a free slot: a task accepted for them cannot go until a slot frees. */
  private globallyFull = false;
  private readonly fullServers = new Set<string>();
  /** Each server's limit as its first candidate in the last pass recorded it (the default until one is seen). */
  private readonly limits = new Map<string, number>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly bus: Bus,
    private readonly logger: BusLogger,
    private readonly options: DispatcherOptions,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.poke();
    await this.loop;
  }

  /** Something changed (a slot freed, a task was re-queued): look again now. */
  poke(): void {
    this.pending = true;
    this.wake?.();
  }

  /**
   * A task was accepted for this server: look again now, unless the last pass
   * saw no free slot for it. Then the pass that follows a freed slot (or the
   * periodic one, for slots freed through another scheduler instance) takes
   * it, and a burst of submissions does not cost a pass each.
   */
  accepted(serverUid: string): void {
    if (this.globallyFull || this.fullServers.has(serverUid)) return;
    this.poke();
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.pending = false;
      let released = 0;
      try {
        released = await this.pass();
      } catch (error) {
        this.logger.warn({ err: error }, 'dispatch pass failed');
      }
      if (!this.running) break;
      if (released >= this.options.batch || this.pending) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.intervalMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /**
   * One pass; returns how many tasks it released. Two round trips to
   * PostgreSQL (one per completed job when slots free one by one): the lock
   * with the candidates, then the record of the release with COMMIT. Both go
   * as simple queries of several statements that execute statements this
   * connection prepared once, so nothing is planned again on every pass.
   */
  async pass(): Promise<number> {
    const client = await this.pool.connect();
    if (!preparedOn.has(client)) {
      try {
        await client.query(PREPARE_STATEMENTS);
      } catch (error) {
        // Half prepared cannot be retried on this connection: the pool drops it.
        client.release(error as Error);
        throw error;
      }
      preparedOn.add(client);
    }
    try {
      // Every task passes through rows that count as busy slots, and each leaves a dead index entry
      // behind: a bitmap scan visits all of them on every pass until VACUUM, an index scan marks them
      // dead once and skips them after (1.5 ms a pass after 3,000 jobs, against 0.07 ms). The
      // candidates are read even when another instance holds the lock, and then ignored.
      const ended = this.options.endedUnwritten();
      const [, , lock, candidates] = (await client.query(
        `BEGIN; SET LOCAL enable_bitmapscan = off; SELECT pg_try_advisory_xact_lock(${DISPATCH_LOCK}) AS locked; ` +
          `EXECUTE dispatch_candidates(${int(this.options.perServerConcurrency)}, ${int(this.options.batch * 4)}, ${int(this.options.maxConcurrent)}, ` +
          `'{${ended.map((e) => uuid(e.id)).join(',')}}', '{${ended.map((e) => int(e.attempt)).join(',')}}')`,
      )) as unknown as [pg.QueryResult, pg.QueryResult, pg.QueryResult<{ locked: boolean }>, pg.QueryResult<QueuedRow & { busy_slots: Record<string, number> | null }>];
      if (!lock.rows[0]?.locked) {
        await client.query('ROLLBACK');
        return 0;
      }
      const rows = candidates.rows;
      const perServer = new Map(Object.entries(rows[0]?.busy_slots ?? {}));
      let free = this.options.maxConcurrent - [...perServer.values()].reduce((a, b) => a + b, 0);
      const queued = rows.filter((row) => row.id !== null);
      if (this.limits.size > 10_000) this.limits.clear();
      const seen = new Set<string>();
      for (const row of queued) {
        // The first candidate of a server is the one whose max_sessions bounded the query.
        if (seen.has(row.server_id)) continue;
        seen.add(row.server_id);
        this.limits.set(row.server_id, row.server_max_sessions || this.options.perServerConcurrency);
      }
      const picked: QueuedRow[] = [];
      for (const row of queued) {
        if (free <= 0 || picked.length >= this.options.batch) break;
        const used = perServer.get(row.server_id) ?? 0;
        if (used >= this.limitOf(row.server_id)) continue;
        perServer.set(row.server_id, used + 1);
        free--;
        picked.push(row);
      }
      const js = this.bus.jetstream();
      const acks = await Promise.allSettled(
        picked.map((row) => js.publish(dispatchSubject(row.server_id), toBinary(executorV1.JobDispatchSchema, dispatchOf(row)), { msgID: dispatchMsgId(row.id, row.attempt) })),
      );
      const released: { id: string; attempt: number; seq: number }[] = [];
      acks.forEach((ack, i) => {
        if (ack.status === 'fulfilled') released.push({ id: picked[i]!.id, attempt: picked[i]!.attempt, seq: ack.value.seq });
        else this.logger.warn({ err: ack.reason, task: picked[i]!.id }, 'dispatch not published; it stays queued');
      });
      // The values become literals of the simple protocol: uuids and integers, checked as such.
      await client.query(
        released.length === 0
          ? 'COMMIT'
          : `EXECUTE dispatch_record('{${released.map((r) => uuid(r.id)).join(',')}}', '{${released.map((r) => int(r.attempt)).join(',')}}', '{${released.map((r) => int(r.seq)).join(',')}}'); COMMIT`,
      );
      this.remember(free, perServer);
      return released.length;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  private limitOf(serverUid: string): number {
    return this.limits.get(serverUid) ?? this.options.perServerConcurrency;
  }

  private remember(free: number, perServer: Map<string, number>): void {
    this.globallyFull = free <= 0;
    this.fullServers.clear();
    for (const [server, used] of perServer) if (used >= this.limitOf(server)) this.fullServers.add(server);
  }
}
