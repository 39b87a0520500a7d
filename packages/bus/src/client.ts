import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { RequestError, TimeoutError, type Msg } from '@nats-io/nats-core';
import { ServiceError, ServiceErrorHeader } from '@nats-io/services';
import { ErrorDetailSchema } from '@runnerhub/contracts';
import type { Bus } from './connection.js';
import { BusError, isErrorCode } from './errors.js';
import { methodSubject } from './subjects.js';
import { injectTraceHeaders } from './trace.js';

export interface CallOptions {
  timeoutMs?: number;
}

export type ServiceClient<T extends GenServiceMethods> = {
  [K in keyof T]: (request: MessageInitShape<T[K]['input']>, options?: CallOptions) => Promise<MessageShape<T[K]['output']>>;
};

const tracer = trace.getTracer('@runnerhub/bus');

/**
 * A typed client for a proto service: each method sends a protobuf request to
 * its subject and resolves with the decoded reply or rejects with a BusError.
 */
export function createClient<T extends GenServiceMethods>(bus: Bus, service: GenService<T>, owner?: string): ServiceClient<T> {
  const client = {} as Record<string, unknown>;
  for (const [localName, method] of Object.entries(service.method)) {
    const subject = methodSubject(method as DescMethod, owner);
    client[localName] = (request: MessageInitShape<DescMessage>, options?: CallOptions) =>
      call(bus, subject, method as DescMethod, request, options?.timeoutMs ?? bus.requestTimeoutMs);
  }
  return client as ServiceClient<T>;
}

async function call(bus: Bus, subject: string, method: DescMethod, request: MessageInitShape<DescMessage>, timeoutMs: number): Promise<unknown> {
  const started = performance.now();
  const span = tracer.startSpan(subject, { kind: SpanKind.CLIENT, attributes: { 'messaging.system': 'nats', 'messaging.destination.name': subject } });
  let outcome = 'ok';
  try {
    const payload = toBinary(method.input, create(method.input, request));
    const reply = await send(bus, subject, payload, timeoutMs, trace.setSpan(context.active(), span));
    if (ServiceError.isServiceError(reply)) throw toBusError(subject, reply);
    return fromBinary(method.output, reply.data);
  } catch (error) {
    const busError = error instanceof BusError ? error : new BusError('INTERNAL_ERROR', `${subject}: ${(error as Error).message}`);
    outcome = busError.code;
    span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
    throw busError;
  } finally {
    span.end();
    bus.metrics.requests.inc({ subject, outcome, role: 'client' });
    bus.metrics.duration.observe({ subject, role: 'client' }, (performance.now() - started) / 1000);
  }
}

async function send(bus: Bus, subject: string, payload: Uint8Array, timeoutMs: number, ctx: ReturnType<typeof context.active>): Promise<Msg> {
  try {
    return await bus.nc.request(subject, payload, { timeout: timeoutMs, headers: injectTraceHeaders(ctx) });
  } catch (error) {
    if (error instanceof RequestError && error.isNoResponders()) {
      throw new BusError('SERVICE_UNAVAILABLE', `no service answers ${subject}`);
    }
    if (error instanceof TimeoutError || (error as Error).name === 'TimeoutError') {
      throw new BusError('SERVICE_UNAVAILABLE', `${subject} did not answer within ${timeoutMs} ms`);
    }
    throw new BusError('SERVICE_UNAVAILABLE', `${subject}: ${(error as Error).message}`);
  }
}

function toBusError(subject: string, reply: Msg): BusError {
  const code = reply.headers?.get(ServiceErrorHeader) ?? '';
  let detail: MessageShape<typeof ErrorDetailSchema> | undefined;
  try {
    detail = reply.data.length > 0 ? fromBinary(ErrorDetailSchema, reply.data) : undefined;
  } catch {
    detail = undefined;
  }
  if (!isErrorCode(code)) return new BusError('INTERNAL_ERROR', `${subject} failed: ${code}`);
  return new BusError(code, detail?.message || code, detail?.details ?? '', detail?.field ?? '');
}
