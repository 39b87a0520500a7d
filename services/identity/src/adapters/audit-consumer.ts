import { fromBinary } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { ensureStreams, STREAMS, type Bus, type BusLogger } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import { isStorable, type AuditEntry, type AuditLog } from '../domain/audit.js';

type Consumer = Awaited<ReturnType<ReturnType<Bus['jetstream']>['consumers']['get']>>;
type Messages = Awaited<ReturnType<Consumer['consume']>>;
type JsMsg = Messages extends AsyncIterable<infer M> ? M : never;

/** The durable consumer every identity instance shares: each record goes to one of them. */
export const AUDIT_CONSUMER = 'audit-store';
const AUDIT_SUBJECTS = 'events.audit.>';

export interface AuditConsumerOptions {
  /** Most records stored by one INSERT. */
  batchSize: number;
  /** How long JetStream waits for an ack before it redelivers a record. */
  ackWaitMs: number;
  /** Pause before redelivering a batch that failed, or before consuming again after an interruption. */
  retryDelayMs?: number;
}

/**
 * Stores the audit records the gateway publishes to JetStream. A record is
 * acknowledged only after its INSERT commits, so a crash or a database outage
 * means a redelivery, which the insert skips if it had in fact landed.
 */
export class AuditConsumer {
  private stopped = false;
  private running?: Promise<void>;
  private messages?: Messages;
  private wake?: () => void;
  private readonly retryDelayMs: number;

  constructor(
    private readonly bus: Bus,
    private readonly audit: AuditLog,
    private readonly logger: BusLogger,
    private readonly options: AuditConsumerOptions,
  ) {
    this.retryDelayMs = options.retryDelayMs ?? 2_000;
  }

  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    // stop, not close: close waits for the iteration, which would then have to be running already.
    this.messages?.stop();
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.consume(await this.ensureConsumer());
      } catch (error) {
        if (!this.stopped) this.logger.warn({ err: error }, 'audit consumer interrupted; starting again');
      }
      if (!this.stopped) await this.pause(this.retryDelayMs);
    }
  }

  private async ensureConsumer(): Promise<Consumer> {
    await ensureStreams(this.bus);
    const jsm = await this.bus.jetstreamManager();
    const settings = { ack_wait: this.options.ackWaitMs * 1_000_000, max_deliver: -1 };
    try {
      await jsm.consumers.add(STREAMS.EVENTS.name, {
        durable_name: AUDIT_CONSUMER,
        filter_subject: AUDIT_SUBJECTS,
        ack_policy: 'explicit',
        deliver_policy: 'all',
        ...settings,
      });
    } catch (error) {
      // It exists with other settings (an older release): bring those up to date.
      if (!/already (exists|in use)/i.test((error as Error).message)) throw error;
      await jsm.consumers.update(STREAMS.EVENTS.name, AUDIT_CONSUMER, settings);
    }
    return this.bus.jetstream().consumers.get(STREAMS.EVENTS.name, AUDIT_CONSUMER);
  }

  private async consume(consumer: Consumer): Promise<void> {
    // Without abort, a consumer deleted (or lost with a NATS store) would be waited for forever.
    const messages = await consumer.consume({ max_messages: this.options.batchSize, abort_on_missing_resource: true });
    this.messages = messages;
    if (this.stopped) messages.stop();
    let batch: JsMsg[] = [];
    for await (const msg of messages) {
      batch.push(msg);
      // Store as soon as nothing more is waiting: batches grow only when records arrive faster than inserts.
      if (batch.length >= this.options.batchSize || messages.getPending() === 0) {
        await this.store(batch);
        batch = [];
      }
    }
  }

  private async store(batch: JsMsg[]): Promise<void> {
    const accepted: JsMsg[] = [];
    const entries: AuditEntry[] = [];
    for (const msg of batch) {
      const entry = decode(msg.data);
      if (entry) {
        accepted.push(msg);
        entries.push(entry);
      } else {
        this.logger.warn({ subject: msg.subject, seq: msg.seq }, 'malformed audit record discarded');
        msg.term();
      }
    }
    if (entries.length === 0) return;
    try {
      await this.audit.append(entries);
    } catch (error) {
      this.logger.warn({ err: error, count: entries.length }, 'audit records not stored; they will be redelivered');
      for (const msg of accepted) msg.nak(this.retryDelayMs);
      return;
    }
    for (const msg of accepted) msg.ack();
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

function decode(data: Uint8Array): AuditEntry | undefined {
  try {
    const record = fromBinary(identityV1.AuditRecordSchema, data);
    const entry: AuditEntry = { ...record, at: record.at ? timestampDate(record.at) : new Date(Number.NaN) };
    return isStorable(entry) ? entry : undefined;
  } catch {
    return undefined;
  }
}
