import { fromBinary } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { DeliverPolicy } from '@nats-io/jetstream';
import { STREAMS, type Bus } from '@runnerhub/bus';
import { executorV1, type schedulerV1 } from '@runnerhub/contracts';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * A job's output lives in the LOGS stream (logs.<job>.<stdout|stderr>, kept
 * 7 days), never in a database: readers replay it with an ordered consumer
 * and keep the chunks of the task's current attempt (and of its highest run,
 * see executor.proto), in the order the executor numbered them.
 */
const subjectOf = (jobId: string) => `logs.${jobId}.>`;
const FINAL = new Set(['completed', 'failed', 'canceled', 'timed_out']);
const STATUS_NAMES: Partial<Record<executorV1.JobStatus, string>> = {
  [executorV1.JobStatus.QUEUED]: 'queued',
  [executorV1.JobStatus.RUNNING]: 'running',
  [executorV1.JobStatus.COMPLETED]: 'completed',
  [executorV1.JobStatus.FAILED]: 'failed',
  [executorV1.JobStatus.CANCELED]: 'canceled',
  [executorV1.JobStatus.TIMED_OUT]: 'timed_out',
};

export interface JobOutput {
  output: string;
  stdout: string;
  stderr: string;
}

function streamName(stream: executorV1.OutputStream): 'stdout' | 'stderr' {
  return stream === executorV1.OutputStream.STDERR ? 'stderr' : 'stdout';
}

async function messagesIn(bus: Bus, jobId: string): Promise<number> {
  const jsm = await bus.jetstreamManager();
  const info = await jsm.streams.info(STREAMS.LOGS.name, { subjects_filter: subjectOf(jobId) } as never);
  return Object.values(info.state.subjects ?? {}).reduce((sum, n) => sum + Number(n), 0);
}

/** Everything the job's current attempt has printed so far. */
export async function readOutput(bus: Bus, jobId: string, attempt: number): Promise<JobOutput> {
  const chunks: executorV1.OutputChunk[] = [];
  if ((await messagesIn(bus, jobId)) > 0) {
    const consumer = await bus.jetstream().consumers.get(STREAMS.LOGS.name, { filter_subjects: subjectOf(jobId), deliver_policy: DeliverPolicy.All });
    const messages = await consumer.consume({ max_messages: 256 });
    try {
      for await (const msg of messages) {
        const chunk = fromBinary(executorV1.OutputChunkSchema, msg.data);
        if (chunk.attempt === attempt) chunks.push(chunk);
        if (msg.info.pending === 0) break;
      }
    } finally {
      messages.stop();
    }
  }
  const run = chunks.reduce((highest, c) => Math.max(highest, c.run), 0);
  const mine = chunks.filter((c) => c.run === run).sort((a, b) => Number(a.seq - b.seq));
  const text = (list: executorV1.OutputChunk[]) => Buffer.concat(list.map((c) => c.data)).toString('utf8');
  return { output: text(mine), stdout: text(mine.filter((c) => c.stream !== executorV1.OutputStream.STDERR)), stderr: text(mine.filter((c) => c.stream === executorV1.OutputStream.STDERR)) };
}

/** The newest status event of a job in EVENTS, if any. */
async function lastStatusEvent(bus: Bus, subject: string): Promise<executorV1.JobStatusChanged | undefined> {
  try {
    const jsm = await bus.jetstreamManager();
    const stored = await jsm.streams.getMessage(STREAMS.EVENTS.name, { last_by_subj: subject });
    return stored ? fromBinary(executorV1.JobStatusChangedSchema, stored.data) : undefined;
  } catch {
    // None stored yet, or EVENTS unreachable: the live events and the record still tell the story.
    return undefined;
  }
}

export interface StreamOptions {
  bus: Bus;
  /** Reads the job again (after subscribing, so no status change falls between). */
  load(): Promise<schedulerV1.Task>;
  /** The LOGS sequence of the last output event the client has (Last-Event-ID). */
  lastEventId?: number;
  heartbeatMs?: number;
}

const iso = (date: Date | undefined) => (date ? date.toISOString() : null);

/**
 * Server-Sent Events for one job: `status` on every change, `output` for
 * each chunk (id: its LOGS sequence, so Last-Event-ID resumes right after
 * it), and `complete` once the final status is known and every chunk of
 * the final attempt was sent. A late subscriber first gets everything
 * produced so far. Comments keep idle connections open.
 */
export async function streamJob(request: FastifyRequest, reply: FastifyReply, options: StreamOptions): Promise<void> {
  const { bus } = options;
  const raw = reply.raw;
  let closed = false;
  let final: { status: string; exitCode?: number; reason: string; endedAt: string | null; outputChunks: bigint } | undefined;
  let attempt = 0;
  let run = 0;
  let nextChunk = 0n;
  let caughtUp = false;
  const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  let messages: { stop(): void } | undefined;
  const cleanups: Array<() => void> = [];

  const write = async (text: string) => {
    if (closed) return;
    if (!raw.write(text)) await new Promise<void>((resolve) => { raw.once('drain', resolve); raw.once('close', resolve); });
  };
  const send = (event: string, data: unknown, id?: number) => write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const close = () => {
    if (closed) return;
    closed = true;
    for (const cleanup of cleanups) cleanup();
    messages?.stop();
    raw.end();
  };
  const maybeComplete = async () => {
    if (closed || !final) return;
    if (final.outputChunks > 0n && nextChunk < final.outputChunks && !caughtUp) return;
    await send('complete', { status: final.status, exit_code: final.exitCode ?? null, reason: final.reason || null, finished_at: final.endedAt });
    close();
  };

  reply.hijack();
  raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  raw.on('close', close);
  request.raw.on('close', close);

  const onStatus = (event: executorV1.JobStatusChanged) => {
    const status = STATUS_NAMES[event.status];
    if (closed || !status || event.attempt < attempt) return;
    if (event.attempt > attempt) {
      attempt = event.attempt;
      run = 0;
      nextChunk = 0n;
      final = undefined;
    }
    void send('status', { status, attempt: event.attempt, started_at: iso(event.startedAt && timestampDate(event.startedAt)), exit_code: event.exitCode ?? null, reason: event.reason || null });
    if (FINAL.has(status)) {
      final = { status, exitCode: event.exitCode, reason: event.reason, endedAt: iso(event.endedAt ? timestampDate(event.endedAt) : new Date()), outputChunks: event.outputChunks };
      void maybeComplete();
    }
  };
  // Status changes as they happen; what came before is in the job read after subscribing, and in
  // the last stored status event (the record lags behind it while the scheduler applies it).
  const jobUid = (await options.load()).uid;
  const statusSubject = `events.job.${jobUid}.status`;
  const statusEvents = bus.nc.subscribe(statusSubject, {
    callback: (error, msg) => {
      if (error) return;
      try {
        onStatus(fromBinary(executorV1.JobStatusChangedSchema, msg.data));
      } catch {
        // A malformed event is not the client's problem.
      }
    },
  });
  cleanups.push(() => statusEvents.unsubscribe());
  const heartbeat = setInterval(() => void write(': keep-alive\n\n'), options.heartbeatMs ?? 15_000);
  cleanups.push(() => clearInterval(heartbeat));

  const job = await options.load();
  attempt = job.attempt;
  await send('status', { status: job.status, attempt: job.attempt, started_at: iso(job.startedAt && timestampDate(job.startedAt)) });
  if (FINAL.has(job.status)) {
    final = { status: job.status, exitCode: job.exitCode, reason: job.reason, endedAt: iso(job.endedAt && timestampDate(job.endedAt)), outputChunks: job.outputChunks };
  }
  const stored = await lastStatusEvent(bus, statusSubject);
  if (stored && (stored.attempt !== job.attempt || STATUS_NAMES[stored.status] !== job.status)) onStatus(stored);

  // Replay, then follow: one ordered consumer from the start (or just after Last-Event-ID).
  const resume = options.lastEventId && options.lastEventId > 0 ? options.lastEventId : 0;
  const consumer = await bus.jetstream().consumers.get(
    STREAMS.LOGS.name,
    resume ? { filter_subjects: subjectOf(job.uid), deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: resume + 1 } : { filter_subjects: subjectOf(job.uid), deliver_policy: DeliverPolicy.All },
  );
  const iterator = await consumer.consume({ max_messages: 256 });
  messages = iterator;
  if (closed) iterator.stop();
  // With no message at all (none yet, or all before Last-Event-ID) the consumer itself says it is caught up.
  let delivered = false;
  const check = setInterval(() => {
    if (!final || closed || delivered) return;
    void consumer.info(false).then((info) => {
      if (info.num_pending === 0) {
        caughtUp = true;
        void maybeComplete();
      }
    }, () => undefined);
  }, 250);
  cleanups.push(() => clearInterval(check));
  for await (const msg of iterator) {
    if (closed) break;
    const chunk = fromBinary(executorV1.OutputChunkSchema, msg.data);
    delivered = true;
    caughtUp = msg.info.pending === 0;
    if (chunk.attempt > attempt) {
      attempt = chunk.attempt;
      final = undefined;
      run = 0;
      nextChunk = 0n;
    }
    if (chunk.attempt < attempt || chunk.run < run) continue;
    if (chunk.run > run) run = chunk.run;
    if (chunk.seq + 1n > nextChunk) nextChunk = chunk.seq + 1n;
    const type = streamName(chunk.stream);
    await send('output', { type, content: decoders[type].decode(chunk.data, { stream: true }), seq: Number(chunk.seq), attempt: chunk.attempt }, msg.seq);
    await maybeComplete();
  }
}
