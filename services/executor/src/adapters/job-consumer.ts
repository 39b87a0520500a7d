import { setTimeout as sleep } from 'node:timers/promises';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate, timestampNow } from '@bufbuild/protobuf/wkt';
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { nanos, type Subscription } from '@nats-io/nats-core';
import { BusError, ensureStreams, subscribeEvents, type Bus, type BusLogger } from '@runnerhub/bus';
import { executorV1 } from '@runnerhub/contracts';
import type { OutputChunk } from '../domain/output.js';
import type { Work } from '../domain/remote-program.js';
import type { CommandRunner, RunResult } from '../domain/run-command.js';
import { isSshError } from '../domain/ssh-errors.js';
import { serverOf, type SshTarget } from '../domain/target.js';

const { ExecutorHeartbeatSchema, JobCancelRequestedSchema, JobDispatchSchema, JobStatus, JobStatusChangedSchema, OutputChunkSchema, OutputStream } = executorV1;
type JobDispatch = executorV1.JobDispatch;
type JobStatusChanged = executorV1.JobStatusChanged;

export const CONSUMER = 'executor';
/** SSH dispatches only: JOBS is a work queue, other executor kinds take other jobs.<kind>.> subjects. */
export const DISPATCH_FILTER = 'jobs.ssh.>';

export interface JobExecutorOptions {
  executorId: string;
  concurrency: number;
  heartbeatMs: number;
  ackWaitMs: number;
  maxAckPending: number;
  /** On stop, how long running jobs may finish before they are canceled. */
  shutdownGraceMs: number;
  /** How long one pull waits for dispatches (at least 1 s). */
  fetchExpiresMs?: number;
  /** Finished attempts remembered, so a redelivered dispatch never runs twice. */
  rememberedFinals?: number;
}

export interface TargetResolver {
  targetFor(dispatch: JobDispatch): Promise<SshTarget>;
}

type StatusInit = MessageInitShape<typeof JobStatusChangedSchema>;

interface RunningJob {
  dispatch: JobDispatch;
  run: number;
  controller: AbortController;
  /** Set when the executor stops: the job was canceled for that, not by a user. */
  shutdown: boolean;
}

const TERMINAL = new Set([JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.TIMED_OUT]);

/**
 * The executor on the bus: pulls SSH dispatches from the durable `executor`
 * consumer on JOBS (never more than `concurrency` at once), runs them with
 * the CommandRunner, streams their output to LOGS in order, publishes
 * RUNNING and the final status to EVENTS, and acknowledges a dispatch only
 * once its final status is stored. Cancels arrive on events.job.*.cancel
 * (every executor hears them); heartbeats say which jobs run here.
 */
export class JobExecutor {
  private readonly js: JetStreamClient;
  private readonly jobs = new Map<string, RunningJob>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly finals = new Map<string, StatusInit & { msgId: string }>();
  private readonly fetchExpiresMs: number;
  private readonly rememberedFinals: number;
  private stopping = false;
  private abandoned = false;
  private batch?: ConsumerMessages;
  private loop?: Promise<void>;
  private heartbeat?: NodeJS.Timeout;
  private cancels?: Subscription;
  private slotFreed: () => void = () => {};

  constructor(
    private readonly bus: Bus,
    private readonly runner: CommandRunner,
    private readonly targets: TargetResolver,
    private readonly options: JobExecutorOptions,
    private readonly logger: BusLogger,
    /** The host key each server offered, for the statuses. */
    private readonly hostKeySeen: (server: string) => string = () => '',
  ) {
    this.js = bus.jetstream();
    // The client refuses pulls shorter than a second.
    this.fetchExpiresMs = Math.max(1_000, options.fetchExpiresMs ?? 1_000);
    this.rememberedFinals = options.rememberedFinals ?? 10_000;
  }

  async start(): Promise<void> {
    await ensureStreams(this.bus);
    await this.ensureConsumer();
    this.cancels = subscribeEvents(this.bus, 'events.job.*.cancel', JobCancelRequestedSchema, (event, subject) => this.cancel(event.jobId || subject.split('.')[2] || '', event.organizationUid));
    this.beat();
    this.heartbeat = setInterval(() => this.beat(), this.options.heartbeatMs);
    const consumer = await this.js.consumers.get('JOBS', CONSUMER);
    this.loop = this.pull(consumer);
  }

  /** Jobs running here now (job id and attempt). */
  running(): { jobId: string; attempt: number }[] {
    return [...this.jobs.values()].map((job) => ({ jobId: job.dispatch.jobId, attempt: job.dispatch.attempt }));
  }

  /**
   * Stops pulling, lets running jobs finish for up to shutdownGraceMs, then
   * cancels the rest: a safe_to_retry job is handed back for redelivery
   * (nak), any other one ends FAILED executor_shutdown.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    void this.batch?.stop();
    // The loop may be waiting for a free slot.
    this.slotFreed();
    await this.loop;
    const settled = Promise.allSettled([...this.inFlight]);
    await Promise.race([settled, sleep(this.options.shutdownGraceMs)]);
    for (const job of this.jobs.values()) {
      job.shutdown = true;
      job.controller.abort();
    }
    await Promise.allSettled([...this.inFlight]);
    clearInterval(this.heartbeat);
    this.cancels?.unsubscribe();
  }

  /** As if the process died: stops everything at once and publishes or acknowledges nothing more. */
  abandon(): void {
    this.abandoned = true;
    this.stopping = true;
    void this.batch?.stop();
    clearInterval(this.heartbeat);
    this.cancels?.unsubscribe();
    for (const job of this.jobs.values()) job.controller.abort();
  }

  private async ensureConsumer(): Promise<void> {
    const jsm = await this.bus.jetstreamManager();
    const tunable = { ack_wait: nanos(this.options.ackWaitMs), max_ack_pending: this.options.maxAckPending };
    try {
      await jsm.consumers.info('JOBS', CONSUMER);
      await jsm.consumers.update('JOBS', CONSUMER, tunable);
    } catch (error) {
      if (!/consumer not found/i.test(String((error as Error).message)) && (error as { name?: string }).name !== 'ConsumerNotFoundError') throw error;
      try {
        await jsm.consumers.add('JOBS', {
          durable_name: CONSUMER,
          filter_subject: DISPATCH_FILTER,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          max_deliver: -1,
          ...tunable,
        });
      } catch (addError) {
        // Another executor created it meanwhile.
        if (!/already (exists|in use)/i.test(String((addError as Error).message))) throw addError;
      }
    }
  }

  private async pull(consumer: Awaited<ReturnType<JetStreamClient['consumers']['get']>>): Promise<void> {
    while (!this.stopping) {
      const free = this.options.concurrency - this.inFlight.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        continue;
      }
      try {
        this.batch = await consumer.fetch({ max_messages: free, expires: this.fetchExpiresMs });
        for await (const msg of this.batch) {
          if (this.abandoned) break;
          const handled = this.handle(msg).catch((error: unknown) => this.logger.error({ err: error, subject: msg.subject }, 'dispatch handling failed'));
          this.inFlight.add(handled);
          void handled.finally(() => {
            this.inFlight.delete(handled);
            this.slotFreed();
          });
        }
      } catch (error) {
        if (this.stopping) break;
        this.logger.warn({ err: error }, 'pulling dispatches failed; retrying');
        await sleep(500);
      }
    }
  }

  private async handle(msg: JsMsg): Promise<void> {
    let dispatch: JobDispatch;
    try {
      dispatch = fromBinary(JobDispatchSchema, msg.data);
    } catch {
      this.logger.error({ subject: msg.subject }, 'malformed dispatch dropped');
      msg.term();
      return;
    }
    const key = `${dispatch.jobId}.${dispatch.attempt}`;
    // Finished here, but the acknowledgement was lost: publish the same final again (deduplicated by its id).
    const remembered = this.finals.get(key);
    if (remembered) {
      await this.publishStatus(remembered, remembered.msgId);
      msg.ack();
      return;
    }
    // Redelivered while it still runs here (its progress acks were late): the running copy will acknowledge.
    if (this.jobs.has(dispatch.jobId)) return;

    let run = 1;
    if (msg.info.deliveryCount > 1) {
      const previous = await this.lastStatus(dispatch.jobId);
      if (previous && (previous.attempt > dispatch.attempt || (previous.attempt === dispatch.attempt && TERMINAL.has(previous.status)))) {
        // Finished elsewhere, or the scheduler already moved on to a later attempt.
        msg.ack();
        return;
      }
      if (previous && previous.attempt === dispatch.attempt) {
        // It started on an executor that was lost before it finished.
        if (!dispatch.safeToRetry) {
          await this.finish(msg, dispatch, Math.max(1, previous.run), {
            status: JobStatus.FAILED,
            reasonCode: 'executor_lost',
            reason: `the executor ${previous.executorId || '(unknown)'} running this job was lost before it finished, and the job is not safe to retry`,
            startedAt: previous.startedAt,
          });
          return;
        }
        run = msg.info.deliveryCount;
      }
    }
    await this.execute(msg, dispatch, run);
  }

  private async execute(msg: JsMsg, dispatch: JobDispatch, run: number): Promise<void> {
    const job: RunningJob = { dispatch, run, controller: new AbortController(), shutdown: false };
    this.jobs.set(dispatch.jobId, job);
    // A rerun of a lost executor's job: say so now, before the scheduler gives up on the job and queues it again.
    if (run > 1) this.beat();
    const keepAlive = setInterval(() => msg.working(), Math.max(100, Math.floor(this.options.ackWaitMs / 3)));
    try {
      let target: SshTarget;
      try {
        target = await this.targets.targetFor(dispatch);
      } catch (error) {
        if (error instanceof BusError && (error.code === 'SERVICE_UNAVAILABLE' || error.code === 'INTERNAL_ERROR')) {
          // Nothing started: try again shortly, here or elsewhere.
          this.logger.warn({ err: error, jobId: dispatch.jobId }, 'credentials unavailable; dispatch handed back');
          msg.nak(2_000);
          return;
        }
        await this.finish(msg, dispatch, run, { status: JobStatus.FAILED, reasonCode: 'CREDENTIALS_REFUSED', reason: `inventory refused the credentials: ${(error as Error).message}` });
        return;
      }
      const startedAt = new Date();
      const prefix = msgIdPrefix(dispatch, run);
      // Not waited for before the command starts: one connection keeps it ahead of the output and of the final status.
      const runningPublished = this.publishStatus(this.status(dispatch, run, { status: JobStatus.RUNNING, startedAt: timestampFromDate(startedAt) }), `${prefix}.running`);
      runningPublished.catch(() => {});
      const logs = new LogPublisher(this.js, dispatch, run, prefix);
      let result: RunResult | undefined;
      let failure: unknown;
      try {
        result = await this.runner.run({
          target,
          work: workOf(dispatch),
          env: dispatch.env,
          timeoutMs: dispatch.timeoutMs || 3_600_000,
          signal: job.controller.signal,
          onOutput: (chunk) => logs.push(chunk),
        });
      } catch (error) {
        failure = error;
      }
      let outputError: unknown;
      await logs.flush().catch((error: unknown) => (outputError = error));
      await runningPublished.catch((error: unknown) => this.logger.warn({ err: error, jobId: dispatch.jobId }, 'running status not published; the final one follows'));
      if (this.abandoned) return;
      if (job.shutdown && dispatch.safeToRetry) {
        // Handed back: the next executor re-runs it from the start.
        msg.nak();
        return;
      }
      const counts = { outputChunks: BigInt(logs.chunks), outputBytes: BigInt(logs.bytes), hostKeyFingerprint: this.hostKeySeen(serverOf(target)), startedAt: timestampFromDate(startedAt) };
      await this.finish(msg, dispatch, run, { ...counts, ...outcome(result, failure, outputError, job.shutdown) });
    } finally {
      clearInterval(keepAlive);
      this.jobs.delete(dispatch.jobId);
    }
  }

  /** Publishes the final status (remembered first, so a lost ack never leads to a second run here), then acknowledges. */
  private async finish(msg: JsMsg, dispatch: JobDispatch, run: number, fields: StatusInit): Promise<void> {
    if (this.abandoned) return;
    const msgId = `${msgIdPrefix(dispatch, run)}.final`;
    const final = { ...this.status(dispatch, run, { endedAt: timestampNow(), ...fields }), msgId };
    this.remember(`${dispatch.jobId}.${dispatch.attempt}`, final);
    await this.publishStatus(final, msgId);
    msg.ack();
  }

  private status(dispatch: JobDispatch, run: number, fields: StatusInit): StatusInit {
    return { jobId: dispatch.jobId, organizationUid: dispatch.organizationUid, attempt: dispatch.attempt, executorId: this.options.executorId, run, ...fields };
  }

  private async publishStatus(status: StatusInit & { msgId?: string }, msgId: string): Promise<void> {
    const { msgId: _ignored, ...fields } = status;
    await this.js.publish(`events.job.${fields.jobId}.status`, toBinary(JobStatusChangedSchema, create(JobStatusChangedSchema, fields)), { msgID: msgId });
  }

  private async lastStatus(jobId: string): Promise<JobStatusChanged | undefined> {
    try {
      const jsm = await this.bus.jetstreamManager();
      const stored = await jsm.streams.getMessage('EVENTS', { last_by_subj: `events.job.${jobId}.status` });
      return stored ? fromBinary(JobStatusChangedSchema, stored.data) : undefined;
    } catch (error) {
      if (/no message found|not found/i.test(String((error as Error).message))) return undefined;
      throw error;
    }
  }

  private remember(key: string, final: StatusInit & { msgId: string }): void {
    this.finals.set(key, final);
    if (this.finals.size > this.rememberedFinals) this.finals.delete(this.finals.keys().next().value as string);
  }

  private cancel(jobId: string, organizationUid: string): void {
    const job = this.jobs.get(jobId);
    if (!job || (organizationUid && organizationUid !== job.dispatch.organizationUid)) return;
    this.logger.info({ jobId }, 'cancel requested');
    job.controller.abort();
  }

  private beat(): void {
    if (this.abandoned) return;
    const heartbeat = create(ExecutorHeartbeatSchema, { executorId: this.options.executorId, running: this.running(), at: timestampNow() });
    this.bus.nc.publish(`executor.v1.heartbeat.${this.options.executorId}`, toBinary(ExecutorHeartbeatSchema, heartbeat));
  }
}

/**
 * Publishes output chunks to LOGS in order with a bounded window of
 * unconfirmed publishes: one connection keeps them in order, the window
 * keeps round trips off the command's path while bounding memory.
 */
class LogPublisher {
  chunks = 0;
  bytes = 0;
  private readonly pending: Promise<unknown>[] = [];

  constructor(
    private readonly js: JetStreamClient,
    private readonly dispatch: JobDispatch,
    private readonly run: number,
    private readonly prefix: string,
    private readonly window = 64,
  ) {}

  async push(chunk: OutputChunk): Promise<void> {
    const message = create(OutputChunkSchema, {
      jobId: this.dispatch.jobId,
      attempt: this.dispatch.attempt,
      seq: BigInt(chunk.seq),
      stream: chunk.stream === 'stdout' ? OutputStream.STDOUT : OutputStream.STDERR,
      data: chunk.data,
      at: timestampFromDate(chunk.at),
      run: this.run,
    });
    this.chunks = chunk.seq + 1;
    this.bytes += chunk.data.length;
    const published = this.js.publish(`logs.${this.dispatch.jobId}.${chunk.stream}`, toBinary(OutputChunkSchema, message), { msgID: `${this.prefix}.${chunk.seq}` });
    // Observed in flush or when the window fills; never unhandled.
    published.catch(() => {});
    this.pending.push(published);
    if (this.pending.length >= this.window) await this.pending.shift();
  }

  async flush(): Promise<void> {
    await Promise.all(this.pending.splice(0));
  }
}

function msgIdPrefix(dispatch: JobDispatch, run: number): string {
  return run > 1 ? `${dispatch.jobId}.${dispatch.attempt}.d${run}` : `${dispatch.jobId}.${dispatch.attempt}`;
}

function workOf(dispatch: JobDispatch): Work {
  switch (dispatch.work.case) {
    case 'command':
      return { command: dispatch.work.value.command };
    case 'script':
      return { script: dispatch.work.value.script, shell: dispatch.work.value.shell || '/bin/bash' };
    default:
      return { command: '' };
  }
}

function outcome(result: RunResult | undefined, failure: unknown, outputError: unknown, shutdown: boolean): StatusInit {
  if (!result) {
    if (isSshError(failure)) return { status: JobStatus.FAILED, reasonCode: failure.kind, reason: failure.message };
    return { status: JobStatus.FAILED, reasonCode: 'INTERNAL', reason: `the executor failed: ${(failure as Error)?.message ?? String(failure)}` };
  }
  const ended = {
    ...(result.exitCode !== null ? { exitCode: result.exitCode } : {}),
    signal: result.signal ?? result.cleanup?.signal ?? '',
    cleanupVerified: result.cleanup?.verified ?? false,
    startedAt: timestampFromDate(result.startedAt),
    endedAt: timestampFromDate(result.endedAt),
  };
  if (outputError !== undefined) return { ...ended, status: JobStatus.FAILED, reasonCode: 'output_failed', reason: `the output could not be stored: ${(outputError as Error).message}` };
  switch (result.status) {
    case 'completed':
      return { ...ended, status: JobStatus.COMPLETED, reasonCode: '', reason: '' };
    case 'timed_out':
      return { ...ended, status: JobStatus.TIMED_OUT, reasonCode: 'timeout', reason: result.reason };
    case 'canceled':
      return shutdown
        ? { ...ended, status: JobStatus.FAILED, reasonCode: 'executor_shutdown', reason: 'the executor stopped before the job finished' }
        : { ...ended, status: JobStatus.CANCELED, reasonCode: 'canceled', reason: result.reason };
    default: {
      const reasonCode = result.exitCode !== null ? 'exit_code' : result.reason.startsWith('the output') ? 'output_failed' : result.signal ? 'signal' : 'connection_lost';
      return { ...ended, status: JobStatus.FAILED, reasonCode, reason: result.reason };
    }
  }
}

