import { randomUUID } from 'node:crypto';
import { create, toBinary, type MessageShape } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, type Registry } from 'prom-client';
import { injectTraceHeaders, type Bus } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import { GroupCommit } from '@runnerhub/service-kit';

type AuditRecord = MessageShape<typeof identityV1.AuditRecordSchema>;
type Headers = ReturnType<typeof injectTraceHeaders>;

export interface AuditOptions {
  bus: Bus;
  registry: Registry;
  /** How long one publish may wait for JetStream's acknowledgement. */
  publishTimeoutMs?: number;
  /** Records kept for a retry while JetStream is unreachable; beyond it the oldest are dropped. */
  maxQueued?: number;
  retryIntervalMs?: number;
}

const AUDITED_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
// Routes a caller uses before holding a token: the claimed identity is the only actor there is.
const CREDENTIAL_ROUTES = /\/(login|register)$/;
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;
const ZERO_TRACE = '0'.repeat(32);

export function outcomeOf(statusCode: number): 'success' | 'denied' | 'failure' {
  if (statusCode < 400) return 'success';
  return [401, 403, 404, 429].includes(statusCode) ? 'denied' : 'failure';
}

/** The trace id of a W3C traceparent, or '' for anything malformed. */
export function traceIdOf(traceparent: unknown): string {
  const match = typeof traceparent === 'string' ? TRACEPARENT.exec(traceparent.trim()) : null;
  return match?.[1] && match[1] !== ZERO_TRACE ? match[1] : '';
}

/** Only an identifier field of a login or registration body, never anything else in it. */
function claimedUsername(request: FastifyRequest): string {
  if (!CREDENTIAL_ROUTES.test(request.routeOptions.url ?? '')) return '';
  const body = request.body as { username?: unknown; email?: unknown } | undefined;
  const claimed = typeof body?.username === 'string' ? body.username : typeof body?.email === 'string' ? body.email : '';
  return claimed.slice(0, 256);
}

function auditRecordOf(request: FastifyRequest, reply: FastifyReply, traceHeaders: Headers): AuditRecord {
  const caller = request.caller;
  return create(identityV1.AuditRecordSchema, {
    id: randomUUID(),
    at: timestampNow(),
    actorUid: caller?.userUid ?? '',
    actorUsername: caller?.username ?? claimedUsername(request),
    organizationUid: caller?.organizationUid ?? '',
    action: `${request.method} ${request.routeOptions.url ?? 'unmatched'}`,
    target: request.url.split('?', 1)[0]!.slice(0, 2048),
    outcome: outcomeOf(reply.statusCode),
    statusCode: reply.statusCode,
    clientAddress: request.ip,
    traceId: traceIdOf(traceHeaders.get('traceparent')) || traceIdOf(request.headers.traceparent),
    requestId: String(request.id).slice(0, 128),
  });
}

interface Submitted {
  record: AuditRecord;
  headers: Headers;
}

interface Encoded {
  record: AuditRecord;
  bytes: Uint8Array;
}

/** Records published as one message; the message id stays with them across retries. */
interface Batch {
  msgID: string;
  records: Encoded[];
  /** The first record's: the request that opened the batch is the one a trace shows publishing it. */
  headers: Headers;
}

const BATCH_SUBJECT = 'events.audit.batch';
// A message stays well under NATS's 1 MiB max payload whatever the records hold.
const MAX_BATCH_RECORDS = 200;
const MAX_BATCH_BYTES = 512 * 1024;

/** Splits records into batches of at most MAX_BATCH_RECORDS and MAX_BATCH_BYTES, in order. */
export function batchesOf(submitted: Submitted[]): Batch[] {
  const batches: Batch[] = [];
  let current: Batch | undefined;
  let currentBytes = 0;
  for (const { record, headers } of submitted) {
    const bytes = toBinary(identityV1.AuditRecordSchema, record);
    if (!current || current.records.length >= MAX_BATCH_RECORDS || currentBytes + bytes.length > MAX_BATCH_BYTES) {
      current = { msgID: randomUUID(), records: [], headers };
      currentBytes = 0;
      batches.push(current);
    }
    current.records.push({ record, bytes });
    // A record also costs its field tag (1 byte) and length prefix (at most 5).
    currentBytes += bytes.length + 6;
  }
  return batches;
}

/** An AuditRecordBatch's wire form from its records already encoded: field 1, once per record. */
function payloadOf(batch: Batch): Uint8Array {
  const writer = new BinaryWriter();
  for (const { bytes } of batch.records) writer.tag(1, WireType.LengthDelimited).bytes(bytes);
  return writer.finish();
}

const idsOf = (records: Encoded[]) => records.map(({ record }) => record.id);

/**
 * Publishes records to JetStream after the response is sent, as group
 * commit: a record submitted while nothing is being published goes at once;
 * those submitted meanwhile go together in the next publish. A batch JetStream
 * did not accept goes to a queue bounded in records and retried in order; its
 * message id stays the same, so a publish that did land before timing out is
 * not stored twice.
 */
class AuditPublisher {
  private readonly queue: Batch[] = [];
  private queuedRecords = 0;
  private readonly commit: GroupCommit<Submitted, void>;
  /** Settles once every record submitted so far is published or queued: the commit keeps submission order. */
  private lastSubmitted: Promise<void> = Promise.resolve();
  private readonly failures: Counter<'result'>;
  private readonly timer: NodeJS.Timeout;
  private retrying?: Promise<void>;

  constructor(
    private readonly bus: Bus,
    registry: Registry,
    private readonly log: FastifyInstance['log'],
    private readonly options: Required<Pick<AuditOptions, 'publishTimeoutMs' | 'maxQueued' | 'retryIntervalMs'>>,
  ) {
    this.failures = new Counter({
      name: 'runnerhub_audit_publish_failures_total',
      help: 'Audit records JetStream did not accept, by what happened to them (queued for a retry, or dropped from a full queue)',
      labelNames: ['result'],
      registers: [registry],
    });
    // Each write takes every record waiting, however many: while JetStream is
    // unreachable they go to the bounded queue instead of piling up here.
    this.commit = new GroupCommit((submitted) => this.write(submitted), { maxBatch: Number.POSITIVE_INFINITY });
    this.timer = setInterval(() => void this.retry(), options.retryIntervalMs);
    this.timer.unref();
  }

  submit(record: AuditRecord, headers: Headers): void {
    this.lastSubmitted = this.commit.submit({ record, headers }).catch((error: unknown) =>
      this.log.error({ err: error, auditId: record.id, action: record.action }, 'audit record not published'));
  }

  /** Waits for publishes under way and gives the queue one last chance. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.lastSubmitted;
    await this.retry();
    if (this.queuedRecords > 0) this.log.error({ count: this.queuedRecords }, 'audit records not published before shutdown');
  }

  private async write(submitted: Submitted[]): Promise<void[]> {
    await Promise.all(batchesOf(submitted).map((batch) => this.publish(batch).then(
      () => undefined,
      (error: unknown) => this.enqueue(batch, error),
    )));
    return submitted.map(() => undefined);
  }

  private publish(batch: Batch) {
    return this.bus.jetstream().publish(BATCH_SUBJECT, payloadOf(batch), {
      msgID: batch.msgID,
      headers: batch.headers,
      timeout: this.options.publishTimeoutMs,
    });
  }

  private enqueue(batch: Batch, error: unknown): void {
    this.failures.inc({ result: 'queued' }, batch.records.length);
    this.queue.push(batch);
    this.queuedRecords += batch.records.length;
    this.log.warn({ err: error, auditIds: idsOf(batch.records), queued: this.queuedRecords }, 'audit records not published; will retry');
    this.dropOldestBeyondLimit();
  }

  /**
   * Drops records from the oldest batch on. A batch that loses some keeps its
   * message id: it holds a part of what an earlier attempt may have landed.
   */
  private dropOldestBeyondLimit(): void {
    const dropped: Encoded[] = [];
    while (this.queuedRecords > this.options.maxQueued) {
      const oldest = this.queue[0]!;
      dropped.push(oldest.records.shift()!);
      this.queuedRecords--;
      if (oldest.records.length === 0) this.queue.shift();
    }
    if (dropped.length === 0) return;
    this.failures.inc({ result: 'dropped' }, dropped.length);
    this.log.error({ auditIds: idsOf(dropped), count: dropped.length }, 'audit retry queue full: oldest records dropped');
  }

  private retry(): Promise<void> {
    this.retrying ??= this.publishQueued().finally(() => {
      this.retrying = undefined;
    });
    return this.retrying;
  }

  private async publishQueued(): Promise<void> {
    try {
      for (let head = this.queue[0]; head; head = this.queue[0]) {
        await this.publish(head);
        // By identity: a full queue may have dropped the head while it was being published.
        const index = this.queue.indexOf(head);
        if (index >= 0) {
          this.queue.splice(index, 1);
          this.queuedRecords -= head.records.length;
        }
      }
    } catch {
      // Still unreachable: the queue keeps its order and the next tick tries again.
    }
  }
}

/** Records every state-changing request once its response has been sent. */
export const auditPlugin = fp(async (app: FastifyInstance, options: AuditOptions) => {
  const publisher = new AuditPublisher(options.bus, options.registry, app.log, {
    publishTimeoutMs: options.publishTimeoutMs ?? 2_000,
    maxQueued: options.maxQueued ?? 10_000,
    retryIntervalMs: options.retryIntervalMs ?? 1_000,
  });
  app.addHook('onResponse', (request, reply, done) => {
    if (AUDITED_METHODS.has(request.method) && request.routeOptions.url !== '/metrics') {
      // Read while the request's trace context is still the active one.
      const headers = injectTraceHeaders();
      publisher.submit(auditRecordOf(request, reply, headers), headers);
    }
    done();
  });
  app.addHook('onClose', async () => publisher.close());
});
