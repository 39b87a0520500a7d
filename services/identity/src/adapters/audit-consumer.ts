import { fromBinary } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { ensureStreams, STREAMS, type Bus, type BusLogger } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import { isStorable, type AuditEntry, type AuditLog } from '../domain/audit.js';

type Consumer = Awaited<ReturnType<ReturnType<Bus['jetstream']>['consumers']['get']>>;
type Messages = Awaited<ReturnType<Consumer['consume']>>;
type JsMsg = Messages extends AsyncIterable<infer M> ? M : never;

/** The durable consumer every identity instance shares: each message goes to one of them. */
export const AUDIT_CONSUMER = 'audit-store';
const AUDIT_SUBJECTS = 'events.audit.>';
const BATCH_SUBJECT = 'events.audit.batch';

export interface AuditConsumerOptions {
  /** Records gathered for one INSERT: messages are pulled until they carry this many, or nothing more is waiting. */
  batchSize: number;
  /** How long JetStream waits for an ack before it redelivers a message. */
  ackWaitMs: number;
  /** Pause before redelivering a batch that failed, or before consuming again after an interruption. */
  retryDelayMs?: number;
}

/**
 * Stores the audit records the gateway publishes to JetStream, many to a
 * message. A message is acknowledged only after the INSERT of its records
 * commits, so a crash or a database outage means a redelivery, whose records
 * the insert skips if they had in fact landed.
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
    let pulled: JsMsg[] = [];
    let entries: AuditEntry[] = [];
    for await (const msg of messages) {
      const storable = this.storableEntriesOf(msg);
      if (storable) {
        pulled.push(msg);
        entries.push(...storable);
      }
      // Store as soon as nothing more is waiting: batches grow only when records arrive faster than inserts.
      if (entries.length >= this.options.batchSize || (messages.getPending() === 0 && pulled.length > 0)) {
        await this.store(pulled, entries);
        pulled = [];
        entries = [];
      }
    }
  }

  /** The entries of a message that can be stored; a message with none is discarded, as a redelivery could not change that. */
  private storableEntriesOf(msg: JsMsg): AuditEntry[] | undefined {
    const carried = entriesOf(msg);
    const storable = carried?.filter(isStorable) ?? [];
    if (storable.length === 0) {
      this.logger.warn({ subject: msg.subject, seq: msg.seq }, 'malformed audit message discarded');
      msg.term();
      return undefined;
    }
    if (storable.length < carried!.length) {
      this.logger.warn({ subject: msg.subject, seq: msg.seq, skipped: carried!.length - storable.length }, 'malformed audit records skipped');
    }
    return storable;
  }

  /** One INSERT for the records of every message pulled; each message is acknowledged once it commits. */
  private async store(pulled: JsMsg[], entries: AuditEntry[]): Promise<void> {
    try {
      await this.audit.append(entries);
    } catch (error) {
      this.logger.warn({ err: error, count: entries.length }, 'audit records not stored; they will be redelivered');
      for (const msg of pulled) msg.nak(this.retryDelayMs);
      return;
    }
    for (const msg of pulled) msg.ack();
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

/**
 * The entries a message carries, or undefined if it does not decode: a batch
 * on events.audit.batch, a single record on the other subjects (published by
 * gateways from before batching).
 */
function entriesOf(msg: JsMsg): AuditEntry[] | undefined {
  try {
    const records = msg.subject === BATCH_SUBJECT
      ? fromBinary(identityV1.AuditRecordBatchSchema, msg.data).records
      : [fromBinary(identityV1.AuditRecordSchema, msg.data)];
    return records.map((record) => ({ ...record, at: record.at ? timestampDate(record.at) : new Date(Number.NaN) }));
  } catch {
    return undefined;
  }
}
