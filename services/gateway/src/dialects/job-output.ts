import { isAscii } from 'node:buffer';
import { Readable, type Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { fromBinary } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { DeliverPolicy, type ConsumerMessages } from '@nats-io/jetstream';
import { STREAMS, type Bus } from '@runnerhub/bus';
import { executorV1, type schedulerV1 } from '@runnerhub/contracts';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * A job's output lives in the LOGS stream (logs.<job>.<stdout|stderr>, kept
 * 7 days), never in a database: readers replay it with an ordered consumer
 * and keep the chunks of the task's current attempt (and of its highest run,
 * see executor.proto). The executor publishes an attempt's chunks in seq
 * order over one connection, so LOGS holds them in that order: readers pass
 * them on as they come and never hold a job's whole output.
 */
const subjectOf = (jobId: string) => `logs.${jobId}.>`;
/**
 * Each pull asks for this many messages: with chunks of at most 64 KiB
 * (executor.proto) a reader buffers at most 4 MiB. A byte limit instead
 * would stall a caught-up reader whenever the next chunk is larger than
 * what is left of the pull.
 */
const PULL_MESSAGES = 64;
const FINAL = new Set(['completed', 'failed', 'canceled', 'timed_out']);
const STATUS_NAMES: Partial<Record<executorV1.JobStatus, string>> = {
  [executorV1.JobStatus.QUEUED]: 'queued',
  [executorV1.JobStatus.RUNNING]: 'running',
  [executorV1.JobStatus.COMPLETED]: 'completed',
  [executorV1.JobStatus.FAILED]: 'failed',
  [executorV1.JobStatus.CANCELED]: 'canceled',
  [executorV1.JobStatus.TIMED_OUT]: 'timed_out',
};

function streamName(stream: executorV1.OutputStream): 'stdout' | 'stderr' {
  return stream === executorV1.OutputStream.STDERR ? 'stderr' : 'stdout';
}

async function messagesIn(bus: Bus, jobId: string): Promise<number> {
  const jsm = await bus.jetstreamManager();
  const info = await jsm.streams.info(STREAMS.LOGS.name, { subjects_filter: subjectOf(jobId) } as never);
  return Object.values(info.state.subjects ?? {}).reduce((sum, n) => sum + Number(n), 0);
}

/** An ordered consumer over the job's LOGS from the start; none when the job printed nothing yet (it would wait for more). */
async function replayLogs(bus: Bus, jobId: string): Promise<ConsumerMessages | undefined> {
  if ((await messagesIn(bus, jobId)) === 0) return undefined;
  const consumer = await bus.jetstream().consumers.get(STREAMS.LOGS.name, { filter_subjects: subjectOf(jobId), deliver_policy: DeliverPolicy.All });
  return consumer.consume({ max_messages: PULL_MESSAGES });
}

/** The attempt's chunks printed so far, in order; chunks of a run lower than one already seen are left out (that run was lost). */
async function* chunksSoFar(messages: ConsumerMessages, attempt: number, lowestRun = 0): AsyncGenerator<executorV1.OutputChunk> {
  let run = lowestRun;
  for await (const msg of messages) {
    const chunk = fromBinary(executorV1.OutputChunkSchema, msg.data);
    if (chunk.attempt === attempt && chunk.run >= run) {
      run = chunk.run;
      yield chunk;
    }
    if (msg.info.pending === 0) break;
  }
}

/**
 * The last `limit` bytes of what is pushed, and how many were pushed in all;
 * holds at most `limit` bytes plus one pushed piece.
 */
export class TailBuffer {
  total = 0;
  private parts: Uint8Array[] = [];
  private held = 0;

  constructor(private readonly limit: number) {}

  push(data: Uint8Array): void {
    this.total += data.length;
    this.parts.push(data);
    this.held += data.length;
    while (this.parts.length > 0 && this.held - this.parts[0]!.length >= this.limit) this.held -= this.parts.shift()!.length;
  }

  get truncated(): boolean {
    return this.total > this.limit;
  }

  /** The tail as UTF-8 text; when cut, it starts at the first whole character (so it may be up to 3 bytes shorter than the limit). */
  text(): string {
    const held = Buffer.concat(this.parts, this.held);
    let start = Math.max(0, held.length - this.limit);
    if (this.truncated) while (start < held.length && (held[start]! & 0xc0) === 0x80) start++;
    return held.subarray(start).toString('utf8');
  }

  clear(): void {
    this.total = 0;
    this.parts = [];
    this.held = 0;
  }
}

export interface JobOutputTail {
  output: string;
  stdout: string;
  stderr: string;
  /** Whether output (and so maybe stdout or stderr) holds only the last `limit` bytes. */
  output_truncated: boolean;
  output_bytes: number;
  stdout_bytes: number;
  stderr_bytes: number;
}

/** The end (at most `limit` bytes of each field) of what the job's current attempt printed so far, and the full sizes. */
export async function readOutputTail(bus: Bus, jobId: string, attempt: number, limit: number): Promise<JobOutputTail> {
  const tails = { output: new TailBuffer(limit), stdout: new TailBuffer(limit), stderr: new TailBuffer(limit) };
  const messages = await replayLogs(bus, jobId);
  if (messages) {
    let run = 0;
    try {
      for await (const chunk of chunksSoFar(messages, attempt)) {
        if (chunk.run > run) {
          // A later run started over: what the lost one printed is not this attempt's output.
          run = chunk.run;
          for (const tail of Object.values(tails)) tail.clear();
        }
        tails.output.push(chunk.data);
        tails[streamName(chunk.stream)].push(chunk.data);
      }
    } finally {
      messages.stop();
    }
  }
  return {
    output: tails.output.text(),
    stdout: tails.stdout.text(),
    stderr: tails.stderr.text(),
    output_truncated: tails.output.truncated,
    output_bytes: tails.output.total,
    stdout_bytes: tails.stdout.total,
    stderr_bytes: tails.stderr.total,
  };
}

/** The last chunk stored for each of the job's streams, with its LOGS sequence. */
async function lastChunks(bus: Bus, jobId: string): Promise<Array<{ seq: number; chunk: executorV1.OutputChunk }>> {
  const jsm = await bus.jetstreamManager();
  const stored = await Promise.all(['stdout', 'stderr'].map((stream) => jsm.streams.getMessage(STREAMS.LOGS.name, { last_by_subj: `logs.${jobId}.${stream}` })));
  return stored.flatMap((message) => (message ? [{ seq: message.seq, chunk: fromBinary(executorV1.OutputChunkSchema, message.data) }] : []));
}

/** The highest run of the attempt among the last chunks of stdout and stderr (0 if neither is of this attempt). */
async function lastRun(bus: Bus, jobId: string, attempt: number): Promise<number> {
  return (await lastChunks(bus, jobId)).reduce((run, { chunk }) => (chunk.attempt === attempt ? Math.max(run, chunk.run) : run), 0);
}

export type OutputField = 'logs' | 'stdout' | 'stderr';

/**
 * Whether text decoded from `data` is ASCII: ASCII bytes decode to as many
 * characters, unless the decoder still held part of a character from before
 * (then it adds a replacement character).
 */
const decodedAscii = (text: string, data: Uint8Array) => text.length === data.length && isAscii(data);

/** JSON string content (without the quotes) of decoded text, as UTF-8; `ascii` (known to be ASCII) spares the encoding. */
const jsonText = (text: string, ascii = false) => Buffer.from(JSON.stringify(text).slice(1, -1), ascii ? 'latin1' : 'utf8');

/**
 * NewRemora's envelope for /logs, /stdout or /stderr with everything the
 * current attempt printed so far in `field` (logs: both streams as they
 * came), written as it is read from LOGS: neither the output nor the
 * document is ever held whole, and a slow client slows the reading down.
 * The reading starts before the answer, so a bus failure is still an error.
 */
export async function outputDocument(bus: Bus, task: schedulerV1.Task, field: OutputField): Promise<Readable> {
  const lowestRun = await lastRun(bus, task.uid, task.attempt);
  const messages = await replayLogs(bus, task.uid);
  const head = `{"success":true,"data":{"id":${JSON.stringify(task.uid)},"status":${JSON.stringify(task.status)},"${field}":"`;
  const end = `"},"error":null,"timestamp":"${new Date().toISOString()}"}`;
  async function* document(): AsyncGenerator<Buffer> {
    yield Buffer.from(head);
    if (messages) {
      const decoder = new StringDecoder('utf8');
      for await (const chunk of chunksSoFar(messages, task.attempt, lowestRun)) {
        if (field !== 'logs' && streamName(chunk.stream) !== field) continue;
        const text = decoder.write(chunk.data);
        if (text) yield jsonText(text, decodedAscii(text, chunk.data));
      }
      yield jsonText(decoder.end());
    }
    yield Buffer.from(end);
  }
  const body = Readable.from(document());
  body.once('close', () => messages?.stop());
  return body;
}

/**
 * Writes a response in batches: what is written within one turn of the
 * event loop goes out as one HTTP chunk (past `batchBytes`, at once), as
 * bytes, so Node neither measures nor encodes large strings again.
 * `write` resolves only once the socket has room again, so a slow client
 * holds the gateway to about one batch beyond the socket's own buffer.
 */
export class BatchedWriter {
  private parts: Buffer[] = [];
  private bytes = 0;
  private scheduled: NodeJS.Immediate | undefined;
  private backedUp: Promise<void> | undefined;
  private ended = false;

  constructor(
    private readonly out: Writable,
    private readonly batchBytes = 256 * 1024,
  ) {}

  /** `ascii`: the text is known to be ASCII, so it is copied as bytes rather than encoded. */
  async write(text: string, ascii = false): Promise<void> {
    if (this.ended) return;
    const bytes = Buffer.from(text, ascii ? 'latin1' : 'utf8');
    this.parts.push(bytes);
    this.bytes += bytes.length;
    if (this.bytes >= this.batchBytes) this.flush();
    else this.scheduled ??= setImmediate(() => this.flush());
    if (this.backedUp) await this.backedUp;
  }

  /** Writes what is left (unless the connection is gone) and ends the response. */
  end(): void {
    if (this.ended) return;
    this.flush();
    this.ended = true;
    this.out.end();
  }

  private flush(): void {
    clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.ended || this.bytes === 0) return;
    const batch = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.bytes);
    this.parts = [];
    this.bytes = 0;
    if (this.out.destroyed || this.out.write(batch) || this.backedUp) return;
    this.backedUp = new Promise<void>((resolve) => {
      const writable = () => {
        this.out.off('drain', writable);
        this.out.off('close', writable);
        this.backedUp = undefined;
        resolve();
      };
      this.out.on('drain', writable);
      this.out.on('close', writable);
    });
  }
}

export interface StreamOptions {
  bus: Bus;
  /** The job as the scheduler has it (status changes that it has not applied yet come from EVENTS). */
  job: schedulerV1.Task;
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
  const { bus, job } = options;
  const raw = reply.raw;
  const writer = new BatchedWriter(raw);
  let closed = false;
  let completing = false;
  /** The final status, and once known the LOGS sequence of the job's last chunk. */
  let final: { status: string; exitCode?: number; reason: string; endedAt: string | null; lastSeq?: number } | undefined;
  let attempt = job.attempt;
  let run = 0;
  /** The LOGS sequence up to which the client has everything. */
  let sentSeq = options.lastEventId && options.lastEventId > 0 ? options.lastEventId : 0;
  const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  const cleanups: Array<() => void> = [];

  const send = (event: string, data: unknown, id?: number, ascii = false) => writer.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`, ascii);
  const close = () => {
    if (closed) return;
    closed = true;
    for (const cleanup of cleanups) cleanup();
    writer.end();
  };
  const maybeComplete = async () => {
    if (closed || completing || final?.lastSeq === undefined || sentSeq < final.lastSeq) return;
    completing = true;
    await send('complete', { status: final.status, exit_code: final.exitCode ?? null, reason: final.reason || null, finished_at: final.endedAt });
    close();
  };
  /**
   * The executor stores every chunk before it publishes the final status,
   * so once that status is known the job's last chunk in LOGS is the end of
   * its output: `complete` follows as soon as the client has it.
   */
  const finish = (status: NonNullable<typeof final>) => {
    final = status;
    void lastChunks(bus, job.uid).then(
      (last) => {
        if (final !== status) return;
        status.lastSeq = Math.max(0, ...last.map(({ seq }) => seq));
        return maybeComplete();
      },
      () => close(),
    );
  };

  reply.hijack();
  raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  raw.on('close', close);
  request.raw.on('close', close);

  try {
    await send('status', { status: job.status, attempt: job.attempt, started_at: iso(job.startedAt && timestampDate(job.startedAt)) });
    if (FINAL.has(job.status)) finish({ status: job.status, exitCode: job.exitCode, reason: job.reason, endedAt: iso(job.endedAt && timestampDate(job.endedAt)) });
    const heartbeat = setInterval(() => void writer.write(': keep-alive\n\n'), options.heartbeatMs ?? 15_000);
    cleanups.push(() => clearInterval(heartbeat));

    // Status changes from EVENTS: the last one stored, then each new one. The
    // job record alone is not enough: the scheduler applies these events a
    // little later, so a change just before this stream opened may be missing
    // from it.
    const statusConsumer = await bus.jetstream().consumers.get(STREAMS.EVENTS.name, { filter_subjects: `events.job.${job.uid}.status`, deliver_policy: DeliverPolicy.LastPerSubject });
    const statusEvents = await statusConsumer.consume({ max_messages: 16 });
    cleanups.push(() => statusEvents.stop());
    if (closed) statusEvents.stop();
    void (async () => {
      for await (const msg of statusEvents) {
        if (closed) break;
        try {
          const event = fromBinary(executorV1.JobStatusChangedSchema, msg.data);
          const status = STATUS_NAMES[event.status];
          if (!status || event.attempt < attempt) continue;
          if (event.attempt > attempt) {
            attempt = event.attempt;
            run = 0;
            final = undefined;
          }
          void send('status', { status, attempt: event.attempt, started_at: iso(event.startedAt && timestampDate(event.startedAt)), exit_code: event.exitCode ?? null, reason: event.reason || null });
          if (FINAL.has(status)) finish({ status, exitCode: event.exitCode, reason: event.reason, endedAt: iso(event.endedAt ? timestampDate(event.endedAt) : new Date()) });
        } catch {
          // A malformed event is not the client's problem.
        }
      }
    })();

    // Replay, then follow: one ordered consumer from the start (or just after Last-Event-ID).
    const consumer = await bus.jetstream().consumers.get(
      STREAMS.LOGS.name,
      sentSeq > 0 ? { filter_subjects: subjectOf(job.uid), deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: sentSeq + 1 } : { filter_subjects: subjectOf(job.uid), deliver_policy: DeliverPolicy.All },
    );
    const messages = await consumer.consume({ max_messages: PULL_MESSAGES });
    cleanups.push(() => messages.stop());
    if (closed) messages.stop();
    for await (const msg of messages) {
      if (closed) break;
      const chunk = fromBinary(executorV1.OutputChunkSchema, msg.data);
      if (chunk.attempt > attempt) {
        attempt = chunk.attempt;
        final = undefined;
        run = 0;
      }
      if (chunk.attempt === attempt && chunk.run >= run) {
        run = chunk.run;
        const type = streamName(chunk.stream);
        const content = decoders[type].write(chunk.data);
        await send('output', { type, content, seq: Number(chunk.seq), attempt: chunk.attempt }, msg.seq, decodedAscii(content, chunk.data));
      }
      sentSeq = msg.seq;
      await maybeComplete();
    }
  } catch (error) {
    // The client reconnects (EventSource does so by itself) and resumes from its Last-Event-ID.
    close();
    throw error;
  }
}
