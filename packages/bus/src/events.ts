import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type { Subscription } from '@nats-io/nats-core';
import type { Bus } from './connection.js';
import { injectTraceHeaders } from './trace.js';

/**
 * Publishes a domain event on an `events.>` subject. The EVENTS stream
 * records it; live subscribers get it at once. Fire-and-forget: for events
 * that must not be lost, publish through JetStream with a message id.
 */
export function publishEvent<D extends DescMessage>(bus: Bus, subject: string, schema: D, event: MessageInitShape<D>): void {
  bus.nc.publish(subject, toBinary(schema, create(schema, event)), { headers: injectTraceHeaders() });
}

/** Every instance receives every matching event (no queue group). */
export function subscribeEvents<D extends DescMessage>(bus: Bus, subject: string, schema: D, handle: (event: MessageShape<D>, subject: string) => void): Subscription {
  return bus.nc.subscribe(subject, {
    callback: (error, msg) => {
      if (error) {
        bus.logger.error({ err: error, subject }, 'event subscription failed');
        return;
      }
      try {
        handle(fromBinary(schema, msg.data), msg.subject);
      } catch (handlerError) {
        bus.logger.warn({ err: handlerError, subject: msg.subject }, 'event ignored');
      }
    },
  });
}
