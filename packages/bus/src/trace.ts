import { context, propagation, type Context, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { headers as createHeaders, type MsgHdrs } from '@nats-io/nats-core';

const setter: TextMapSetter<MsgHdrs> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

const getter: TextMapGetter<MsgHdrs | undefined> = {
  keys: (carrier) => (carrier ? [...carrier.keys()] : []),
  get: (carrier, key) => carrier?.get(key) || undefined,
};

/** W3C trace context of the given (default: active) context, as NATS headers. */
export function injectTraceHeaders(ctx: Context = context.active(), hdrs: MsgHdrs = createHeaders()): MsgHdrs {
  propagation.inject(ctx, hdrs, setter);
  return hdrs;
}

export function extractTraceContext(hdrs: MsgHdrs | undefined): Context {
  return propagation.extract(context.active(), hdrs, getter);
}
