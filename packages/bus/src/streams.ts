import { RetentionPolicy, StorageType, type StreamConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import type { Bus } from './connection.js';

const DAY_NS = nanos(24 * 60 * 60 * 1000);

/**
 * The durable streams of DESIGN.md §2. JOBS is a work queue: a dispatch is
 * removed once an executor acknowledges it. EVENTS and LOGS keep history for
 * late subscribers (a job's output can be replayed from its first chunk).
 */
export const STREAMS: Record<'JOBS' | 'EVENTS' | 'LOGS', Partial<StreamConfig> & { name: string; subjects: string[] }> = {
  JOBS: { name: 'JOBS', subjects: ['jobs.>'], retention: RetentionPolicy.Workqueue, storage: StorageType.File, duplicate_window: nanos(2 * 60 * 1000) },
  EVENTS: { name: 'EVENTS', subjects: ['events.>'], retention: RetentionPolicy.Limits, storage: StorageType.File, max_age: 7 * DAY_NS, duplicate_window: nanos(2 * 60 * 1000) },
  LOGS: { name: 'LOGS', subjects: ['logs.>'], retention: RetentionPolicy.Limits, storage: StorageType.File, max_age: 7 * DAY_NS, duplicate_window: nanos(2 * 60 * 1000) },
};

/** Creates the streams or brings their configuration up to date; safe to call from every instance. */
export async function ensureStreams(bus: Bus): Promise<void> {
  const jsm = await bus.jetstreamManager();
  for (const config of Object.values(STREAMS)) {
    try {
      const existing = await jsm.streams.info(config.name);
      await jsm.streams.update(config.name, { ...existing.config, ...config });
    } catch (error) {
      if (!isStreamNotFound(error)) throw error;
      try {
        await jsm.streams.add(config);
      } catch (addError) {
        // Another instance created it between our info and add: that is fine.
        if (!String((addError as Error).message).includes('already in use')) throw addError;
      }
    }
  }
}

function isStreamNotFound(error: unknown): boolean {
  return (error as { name?: string }).name === 'StreamNotFoundError' || /stream not found/i.test(String((error as Error).message));
}
