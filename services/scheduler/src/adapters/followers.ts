import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { JsMsg } from '@nats-io/jetstream';
import type { Subscription } from '@nats-io/nats-core';
import { ensureStreams, STREAMS, type Bus, type BusLogger } from '@runnerhub/bus';
import { GroupCommit } from '@runnerhub/service-kit';
import { executorV1 } from '@runnerhub/contracts';
import type { Lifecycle, LostTask, StatusReport } from '../domain/lifecycle.js';
import type { TaskStatusName } from '../domain/tasks.js';
import type { EndedAttempt } from './dispatcher.js';

type Consumer = Awaited<ReturnType<ReturnType<Bus['jetstream']>['consumers']['get']>>;
type Messages = Awaited<ReturnType<Consumer['consume']>>;

/** The durable consumer every scheduler instance shares: each status report goes to one of them. */
export const STATUS_CONSUMER = 'scheduler-job-status';
const STATUS_SUBJECTS = 'events.job.*.status';
export const HEARTBEAT_SUBJECTS = 'executor.v1.heartbeat.*';

const STATUS_NAMES: Partial<Record<executorV1.JobStatus, TaskStatusName>> = {
  [executorV1.JobStatus.RUNNING]: 'running',
  [executorV1.JobStatus.COMPLETED]: 'completed',
  [executorV1.JobStatus.FAILED]: 'failed',
  [executorV1.JobStatus.CANCELED]: 'canceled',
  [executorV1.JobStatus.TIMED_OUT]: 'timed_out',
};

export function reportOf(event: executorV1.JobStatusChanged): StatusReport | null {
  const status = STATUS_NAMES[event.status];
  if (!status) return null;
  return {
    taskUid: event.jobId,
    attempt: event.attempt,
    status,
    exitCode: event.exitCode,
    reasonCode: event.reasonCode,
    reason: event.reason,
    startedAt: event.startedAt ? timestampDate(event.startedAt) : undefined,
    endedAt: event.endedAt ? timestampDate(event.endedAt) : undefined,
    executorId: event.executorId,
    outputChunks: event.outputChunks,
  };
}

/** Publishes the scheduler's own status changes (cancel of a queued task, executor lost) where the executor's go. */
export async function publishStatus(bus: Bus, event: MessageInitShape<typeof executorV1.JobStatusChangedSchema>, msgID: string): Promise<void> {
  const message = create(executorV1.JobStatusChangedSchema, event);
  await bus.jetstream().publish(`events.job.${message.jobId}.status`, toBinary(executorV1.JobStatusChangedSchema, message), { msgID });
}

interface ReceivedReport {
  msg: JsMsg;
  /** Null for an event that is not a status the scheduler records (it is acknowledged all the same). */
  report: StatusReport | null;
}

/** Reports received but not yet applied: beyond this many, consuming waits. */
const MAX_UNAPPLIED = 1_000;

export interface FollowerOptions {
  /** A running task whose executor was silent this long is lost. */
  executorLostMs: number;
  /**
   * How long a RUNNING report waits before it is recorded. A task that ends
   * meanwhile is written once, with its final status (which carries when it
   * started), instead of twice: each write of a task row is a new row
   * version in seven indexes. 0 records it at once.
   */
  runningDelayMs?: number;
  ackWaitMs?: number;
  retryDelayMs?: number;
}

/**
 * Follows what executors report: status changes from EVENTS (durable, shared,
 * applied idempotently), heartbeats on core NATS (every instance hears them),
 * and a reaper that ends or re-queues running tasks whose executor fell silent.
 */
export class Followers {
  private stopped = false;
  private consuming?: Promise<void>;
  private messages?: Messages;
  private heartbeats?: Subscription;
  private reaper?: NodeJS.Timeout;
  private reaping = false;
  private readonly lastHeard = new Map<string, number>();
  private readonly jobHeard = new Map<string, number>();
  private readonly startedAt = Date.now();
  /** Final reports received and not yet written, by task and attempt: their slots are free already. */
  private readonly ended = new Map<string, EndedAttempt>();
  /** RUNNING reports waiting to be recorded, by task and attempt. */
  private readonly deferred = new Map<string, { settle: (submit: boolean) => void }>();
  /** Reports arriving while a batch is being applied go together in the next one; one batch at a time keeps stream order. */
  private readonly reports = new GroupCommit<ReceivedReport, void>((batch) => this.applyBatch(batch), { maxBatch: 200 });

  constructor(
    private readonly bus: Bus,
    private readonly lifecycle: Lifecycle,
    private readonly logger: BusLogger,
    private readonly options: FollowerOptions,
    /** Called when a slot freed: a task was reported ended, or its executor was lost. */
    private readonly onChange: () => void = () => {},
  ) {}

  start(): void {
    this.heartbeats = this.bus.nc.subscribe(HEARTBEAT_SUBJECTS, {
      callback: (error, msg) => {
        if (error) return;
        try {
          const beat = fromBinary(executorV1.ExecutorHeartbeatSchema, msg.data);
          const now = Date.now();
          if (beat.executorId) this.lastHeard.set(beat.executorId, now);
          // A job may run on another executor than the one that reported it first (a redelivered dispatch).
          for (const job of beat.running) this.jobHeard.set(`${job.jobId}.${job.attempt}`, now);
        } catch (decodeError) {
          this.logger.warn({ err: decodeError, subject: msg.subject }, 'malformed heartbeat ignored');
        }
      },
    });
    this.consuming ??= this.consumeForever();
    const every = Math.max(Math.floor(this.options.executorLostMs / 4), 100);
    this.reaper = setInterval(() => void this.reap(), every);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reaper) clearInterval(this.reaper);
    this.heartbeats?.unsubscribe();
    this.messages?.stop();
    for (const waiting of this.deferred.values()) waiting.settle(true);
    await this.consuming;
  }

  /** Attempts reported ended whose final status is still being written. */
  endedUnwritten(): EndedAttempt[] {
    return [...this.ended.values()];
  }

  /** Executors heard from within the loss timeout. */
  activeExecutors(): number {
    const since = Date.now() - this.options.executorLostMs;
    return [...this.lastHeard.values()].filter((at) => at >= since).length;
  }

  /** Ends or re-queues every running task whose executor has been silent too long; returns what it did. */
  async reap(): Promise<LostTask[]> {
    if (this.reaping || this.stopped) return [];
    this.reaping = true;
    const lost: LostTask[] = [];
    try {
      const now = Date.now();
      for (const [job, at] of this.jobHeard) if (now - at > 2 * this.options.executorLostMs) this.jobHeard.delete(job);
      for (const task of await this.lifecycle.running()) {
        // A scheduler that just started has heard nobody yet: it gives every executor a full period.
        const heard = Math.max(this.lastHeard.get(task.executorId) ?? 0, this.jobHeard.get(`${task.uid}.${task.attempt}`) ?? 0, task.since.getTime(), this.startedAt);
        if (now - heard <= this.options.executorLostMs) continue;
        const result = await this.lifecycle.lose(task.uid, task.attempt, task.executorId);
        if (!result) continue;
        lost.push(result);
        this.jobHeard.delete(`${task.uid}.${task.attempt}`);
        if (result.dispatchSeq !== null) {
          const jsm = await this.bus.jetstreamManager();
          await jsm.streams.deleteMessage(STREAMS.JOBS.name, Number(result.dispatchSeq), false).catch(() => false);
        }
        this.logger.warn({ task: task.uid, executor: task.executorId, requeued: result.requeued }, 'executor lost');
        const at = timestampFromDate(new Date());
        await publishStatus(
          this.bus,
          result.requeued
            ? { jobId: task.uid, organizationUid: result.organizationUid, attempt: result.attempt, status: executorV1.JobStatus.QUEUED, reasonCode: 'executor_lost', reason: 're-queued: its executor was lost', executorId: task.executorId }
            : { jobId: task.uid, organizationUid: result.organizationUid, attempt: task.attempt, status: executorV1.JobStatus.FAILED, reasonCode: 'executor_lost', reason: `executor ${task.executorId || '(unknown)'} stopped sending heartbeats`, endedAt: at, executorId: task.executorId },
          `${task.uid}.${task.attempt}.scheduler.executor_lost`,
        ).catch((error: unknown) => this.logger.warn({ err: error, task: task.uid }, 'executor_lost status not published'));
      }
      if (lost.length > 0) this.onChange();
    } catch (error) {
      this.logger.warn({ err: error }, 'executor_lost check failed');
    } finally {
      this.reaping = false;
    }
    return lost;
  }

  private async consumeForever(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.consume(await this.ensureConsumer());
      } catch (error) {
        if (!this.stopped) this.logger.warn({ err: error }, 'status consumer interrupted; starting again');
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, this.options.retryDelayMs ?? 1_000));
    }
  }

  private async ensureConsumer(): Promise<Consumer> {
    await ensureStreams(this.bus);
    const jsm = await this.bus.jetstreamManager();
    const settings = { ack_wait: (this.options.ackWaitMs ?? 10_000) * 1_000_000, max_deliver: -1 };
    try {
      await jsm.consumers.add(STREAMS.EVENTS.name, { durable_name: STATUS_CONSUMER, filter_subject: STATUS_SUBJECTS, ack_policy: 'explicit', deliver_policy: 'all', ...settings } as never);
    } catch (error) {
      if (!/already (exists|in use)/i.test((error as Error).message)) throw error;
      await jsm.consumers.update(STREAMS.EVENTS.name, STATUS_CONSUMER, settings);
    }
    return this.bus.jetstream().consumers.get(STREAMS.EVENTS.name, STATUS_CONSUMER);
  }

  private async consume(consumer: Consumer): Promise<void> {
    const messages = await consumer.consume({ max_messages: 200, abort_on_missing_resource: true });
    this.messages = messages;
    if (this.stopped) messages.stop();
    const applying = new Set<Promise<void>>();
    for await (const msg of messages) {
      let report: StatusReport | null;
      try {
        report = reportOf(fromBinary(executorV1.JobStatusChangedSchema, msg.data));
      } catch {
        this.logger.warn({ subject: msg.subject, seq: msg.seq }, 'malformed status event discarded');
        msg.term();
        continue;
      }
      const applied: Promise<void> = this.record({ msg, report }).then(
        () => msg.ack(),
        (error: unknown) => {
          this.logger.warn({ err: error, subject: msg.subject }, 'status not applied; it will be redelivered');
          msg.nak(this.options.retryDelayMs ?? 1_000);
        },
      ).finally(() => applying.delete(applied));
      applying.add(applied);
      if (applying.size >= MAX_UNAPPLIED) await Promise.race(applying);
    }
    await Promise.all(applying);
  }

  /**
   * Submits a report for recording. A RUNNING report waits runningDelayMs
   * first; the task's final report arriving meanwhile makes it unnecessary
   * (it is acknowledged unrecorded). Only one task's reports need stream
   * order, and a late RUNNING never undoes a final status (see Lifecycle).
   */
  private record(received: ReceivedReport): Promise<void> {
    const report = received.report;
    const delayMs = this.options.runningDelayMs ?? 0;
    if (!report) return this.reports.submit(received);
    const key = `${report.taskUid.toLowerCase()}.${report.attempt}`;
    if (report.status !== 'running') {
      this.deferred.get(key)?.settle(false);
      const written = this.reports.submit(received);
      if (!this.ended.has(key)) {
        // The slot is free now: a dispatch pass need not wait for the write.
        this.ended.set(key, { id: report.taskUid.toLowerCase(), attempt: report.attempt });
        void written.finally(() => this.ended.delete(key)).catch(() => {});
        this.onChange();
      }
      return written;
    }
    if (delayMs <= 0 || this.stopped || this.deferred.has(key)) return this.reports.submit(received);
    return new Promise<boolean>((resolve) => {
      const settle = (submit: boolean) => {
        clearTimeout(timer);
        this.deferred.delete(key);
        resolve(submit);
      };
      const timer = setTimeout(() => settle(true), delayMs);
      this.deferred.set(key, { settle });
    }).then((submit) => (submit ? this.reports.submit(received) : undefined));
  }

  /** One batch of reports, in stream order: one statement per kind, whatever the batch's size. */
  private async applyBatch(batch: readonly ReceivedReport[]): Promise<void[]> {
    const reports = batch.flatMap(({ report }) => (report ? [report] : []));
    const changed = await this.lifecycle.applyAll(reports);
    for (const report of reports) {
      // A RUNNING report changes nothing when a redelivered dispatch runs the task again elsewhere, but says who runs it now.
      if (report.status === 'running') this.jobHeard.set(`${report.taskUid}.${report.attempt}`, Date.now());
      if (!changed.has(report.taskUid.toLowerCase())) continue;
      if (report.executorId) this.lastHeard.set(report.executorId, Math.max(this.lastHeard.get(report.executorId) ?? 0, Date.now()));
    }
    // No dispatch pass is asked for here: a final report asked for one when it arrived (see record).
    return batch.map(() => undefined);
  }
}
