import { randomUUID } from 'node:crypto';
import { create, toBinary, type MessageShape } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, type Registry } from 'prom-client';
import { injectTraceHeaders, type Bus } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';

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

interface Pending {
  record: AuditRecord;
  headers: Headers;
}

/**
 * Publishes records to JetStream after the response is sent. A failed publish
 * goes to a bounded queue retried in order; the record id is the message id,
 * so a publish that did land before timing out is not stored twice.
 */
class AuditPublisher {
  private readonly queue: Pending[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly failures: Counter<'result'>;
  private readonly timer: NodeJS.Timeout;
  private retrying = false;

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
    this.timer = setInterval(() => void this.retry(), options.retryIntervalMs);
    this.timer.unref();
  }

  submit(record: AuditRecord, headers: Headers): void {
    const publishing = this.publish({ record, headers }).then(
      () => undefined,
      (error: unknown) => this.enqueue({ record, headers }, error),
    );
    this.inFlight.add(publishing);
    void publishing.finally(() => this.inFlight.delete(publishing));
  }

  /** Waits for publishes under way and gives the queue one last chance. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.inFlight);
    await this.retry();
    if (this.queue.length > 0) this.log.error({ count: this.queue.length }, 'audit records not published before shutdown');
  }

  private publish({ record, headers }: Pending) {
    return this.bus.jetstream().publish(`events.audit.${record.outcome}`, toBinary(identityV1.AuditRecordSchema, record), {
      msgID: record.id,
      headers,
      timeout: this.options.publishTimeoutMs,
    });
  }

  private enqueue(pending: Pending, error: unknown): void {
    this.failures.inc({ result: 'queued' });
    this.queue.push(pending);
    this.log.warn({ err: error, auditId: pending.record.id, action: pending.record.action, queued: this.queue.length }, 'audit record not published; will retry');
    if (this.queue.length > this.options.maxQueued) {
      const dropped = this.queue.shift()!;
      this.failures.inc({ result: 'dropped' });
      this.log.error({ auditId: dropped.record.id, action: dropped.record.action }, 'audit retry queue full: oldest record dropped');
    }
  }

  private async retry(): Promise<void> {
    if (this.retrying) return;
    this.retrying = true;
    try {
      for (let head = this.queue[0]; head; head = this.queue[0]) {
        await this.publish(head);
        // By identity: a full queue may have dropped the head while it was being published.
        const index = this.queue.indexOf(head);
        if (index >= 0) this.queue.splice(index, 1);
      }
    } catch {
      // Still unreachable: the queue keeps its order and the next tick tries again.
    } finally {
      this.retrying = false;
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
