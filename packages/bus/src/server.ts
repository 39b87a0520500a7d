import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { MsgHdrs } from '@nats-io/nats-core';
import { Svcm, type Service, type ServiceMsg } from '@nats-io/services';
import { ErrorDetailSchema } from '@runnerhub/contracts';
import type { Bus, BusLogger } from './connection.js';
import { BusError } from './errors.js';
import { endpointName, groupSubject } from './subjects.js';
import { extractTraceContext } from './trace.js';

export interface HandlerContext {
  subject: string;
  headers: MsgHdrs | undefined;
  logger: BusLogger;
}

export type Implementation<T extends GenServiceMethods> = {
  [K in keyof T]: (request: MessageShape<T[K]['input']>, ctx: HandlerContext) => Promise<MessageInitShape<T[K]['output']>>;
};

/** A proto service bound to its implementation, ready to be served. */
export interface Registration {
  group: string;
  endpoints: Array<{ method: DescMethod; handle: (request: never, ctx: HandlerContext) => Promise<unknown> }>;
}

export function implement<T extends GenServiceMethods>(service: GenService<T>, implementation: Implementation<T>, owner?: string): Registration {
  const group = groupSubject(service as never, owner);
  const endpoints = Object.entries(service.method).map(([localName, method]) => {
    const handle = implementation[localName as keyof T];
    return { method: method as DescMethod, handle: handle as Registration['endpoints'][number]['handle'] };
  });
  return { group, endpoints };
}

export interface ServiceIdentity {
  name: string;
  version: string;
  description: string;
}

const tracer = trace.getTracer('@runnerhub/bus');

export interface ServedService {
  service: Service;
  /** Stops taking requests, then waits for the ones in flight to be answered. */
  stop(): Promise<void>;
}

/**
 * Serves implementations with the NATS service framework, so $SRV.PING/INFO/STATS
 * discover every instance; instances of one service share a queue group.
 */
export async function serveService(bus: Bus, identity: ServiceIdentity, registrations: Registration[]): Promise<ServedService> {
  const service = await new Svcm(bus.nc).add({ ...identity, queue: identity.name });
  const inFlight = new Set<Promise<void>>();
  for (const { group, endpoints } of registrations) {
    const serviceGroup = service.addGroup(group);
    for (const endpoint of endpoints) {
      const subject = `${group}.${endpointName(endpoint.method)}`;
      serviceGroup.addEndpoint(endpointName(endpoint.method), {
        metadata: { request: endpoint.method.input.typeName, response: endpoint.method.output.typeName },
        handler: (err, msg) => {
          if (err) {
            bus.logger.error({ err, subject }, 'endpoint stopped');
            return;
          }
          const handled = handleMessage(bus, subject, endpoint.method, endpoint.handle, msg);
          inFlight.add(handled);
          void handled.finally(() => inFlight.delete(handled));
        },
      });
    }
  }
  return {
    service,
    async stop() {
      await service.stop();
      // Their handlers may still need the database the caller closes next.
      await Promise.allSettled([...inFlight]);
    },
  };
}

async function handleMessage(
  bus: Bus,
  subject: string,
  method: DescMethod,
  handle: Registration['endpoints'][number]['handle'],
  msg: ServiceMsg,
): Promise<void> {
  const started = performance.now();
  const parent = extractTraceContext(msg.headers);
  const span = tracer.startSpan(subject, { kind: SpanKind.SERVER, attributes: { 'messaging.system': 'nats', 'messaging.destination.name': subject } }, parent);
  let outcome = 'ok';
  try {
    await context.with(trace.setSpan(parent, span), async () => {
      const request = decode(method.input, msg.data);
      const result = await handle(request as never, { subject, headers: msg.headers, logger: bus.logger });
      msg.respond(toBinary(method.output, create(method.output, result as MessageInitShape<DescMessage>)));
    });
  } catch (error) {
    const busError = error instanceof BusError ? error : undefined;
    outcome = busError?.code ?? 'INTERNAL_ERROR';
    if (!busError) bus.logger.error({ err: error, subject }, 'handler failed');
    span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
    const detail = create(ErrorDetailSchema, {
      code: outcome,
      message: busError?.message ?? 'internal error',
      details: busError?.details ?? '',
      field: busError?.field ?? '',
    });
    msg.respondError(busError?.status ?? 500, outcome, toBinary(ErrorDetailSchema, detail));
  } finally {
    span.end();
    bus.metrics.requests.inc({ subject, outcome, role: 'server' });
    bus.metrics.duration.observe({ subject, role: 'server' }, (performance.now() - started) / 1000);
  }
}

function decode(schema: DescMessage, data: Uint8Array): MessageShape<DescMessage> {
  try {
    return fromBinary(schema, data);
  } catch {
    throw BusError.validation(`malformed ${schema.typeName}`);
  }
}
