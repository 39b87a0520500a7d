import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { startTelemetry, type Telemetry } from './telemetry.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
}
interface OtlpAttribute {
  key: string;
  value: { stringValue?: string };
}
interface OtlpRequest {
  resourceSpans: { resource: { attributes: OtlpAttribute[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}

/** A minimal OTLP/HTTP JSON trace receiver on loopback. */
async function startReceiver() {
  const requests: { contentType: string | undefined; body: OtlpRequest }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        requests.push({ contentType: req.headers['content-type'], body: JSON.parse(Buffer.concat(chunks).toString()) });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const spans = () =>
    requests.flatMap(({ body }) =>
      body.resourceSpans.flatMap((rs) =>
        rs.scopeSpans.flatMap((ss) =>
          ss.spans.map((span) => ({ ...span, resource: Object.fromEntries(rs.resource.attributes.map((a) => [a.key, a.value.stringValue])) })),
        ),
      ),
    );
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    spans,
    async waitForSpan(name: string, timeoutMs = 5000) {
      for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
        const span = spans().find((s) => s.name === name);
        if (span) return span;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`span "${name}" was not exported within ${timeoutMs} ms`);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

type Receiver = Awaited<ReturnType<typeof startReceiver>>;

let receiver: Receiver;
let telemetry: Telemetry | undefined;
beforeEach(async () => {
  receiver = await startReceiver();
});
afterEach(async () => {
  await telemetry?.shutdown();
  telemetry = undefined;
  await receiver.close();
});

describe('startTelemetry', () => {
  it('exports spans as OTLP/HTTP JSON to <endpoint>/v1/traces within the batch delay, with service name and version', async () => {
    telemetry = await startTelemetry({ service: 'scheduler', version: '1.2.3', otlpEndpoint: receiver.endpoint });
    telemetry.tracer.startSpan('schedule fire').end();

    const span = await receiver.waitForSpan('schedule fire', 3000);

    expect(receiver.requests[0]?.contentType).toBe('application/json');
    expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(span.resource).toMatchObject({ 'service.name': 'scheduler', 'service.version': '1.2.3' });
  });

  it('flushes queued spans on shutdown', async () => {
    telemetry = await startTelemetry({ service: 'executor', version: '0.1.0', otlpEndpoint: receiver.endpoint });
    telemetry.tracer.startSpan('ssh exec').end();

    await telemetry.shutdown();

    expect(receiver.spans().map((s) => s.name)).toEqual(['ssh exec']);
  });

  it('continues the trace of an extracted W3C traceparent in a child span', async () => {
    telemetry = await startTelemetry({ service: 'inventory', version: '0.1.0', otlpEndpoint: receiver.endpoint });
    const { tracer } = telemetry;

    // The gateway side: inject the active span into message headers.
    const headers: Record<string, string> = {};
    const parent = tracer.startActiveSpan('gateway request', (span) => {
      propagation.inject(context.active(), headers);
      span.end();
      return span.spanContext();
    });
    expect(headers.traceparent).toBe(`00-${parent.traceId}-${parent.spanId}-01`);

    // The service side: extract from the headers and start a child there.
    const child = tracer.startSpan('inventory.v1.servers.create', {}, propagation.extract(ROOT_CONTEXT, headers));
    child.end();

    expect(child.spanContext().traceId).toBe(parent.traceId);
    const exported = await receiver.waitForSpan('inventory.v1.servers.create');
    expect(exported).toMatchObject({ traceId: parent.traceId, parentSpanId: parent.spanId });
  });

  it('propagates W3C baggage alongside the trace context', async () => {
    telemetry = await startTelemetry({ service: 'gateway', version: '0.1.0' });
    const headers: Record<string, string> = {};
    const withBaggage = propagation.setBaggage(
      ROOT_CONTEXT,
      propagation.createBaggage({ 'org.id': { value: 'acme' } }),
    );

    propagation.inject(withBaggage, headers);

    expect(headers.baggage).toBe('org.id=acme');
    expect(propagation.getBaggage(propagation.extract(ROOT_CONTEXT, headers))?.getEntry('org.id')?.value).toBe('acme');
  });

  it('tracks the active span across awaits without an exporter', async () => {
    telemetry = await startTelemetry({ service: 'metrics', version: '0.1.0' });

    const [outer, inner] = await telemetry.tracer.startActiveSpan('outer', async (span) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      const active = trace.getActiveSpan()?.spanContext().spanId;
      span.end();
      return [span.spanContext().spanId, active];
    });

    expect(outer).toMatch(/^[0-9a-f]{16}$/);
    expect(inner).toBe(outer);
  });

  it('returns the @fastify/otel plugin when spans are exported', async () => {
    telemetry = await startTelemetry({ service: 'gateway', version: '0.1.0', otlpEndpoint: 'http://127.0.0.1:9' });
    const plugin = telemetry.fastifyPlugin() as { [key: symbol]: unknown };

    expect(typeof plugin).toBe('function');
    expect(plugin[Symbol.for('fastify.display-name')]).toBe('@fastify/otel');
  });

  it('instruments nothing and returns a pass-through plugin when no exporter is configured', async () => {
    telemetry = await startTelemetry({ service: 'gateway', version: '0.1.0' });
    const plugin = telemetry.fastifyPlugin() as { [key: symbol]: unknown };

    expect(typeof plugin).toBe('function');
    expect(plugin[Symbol.for('fastify.display-name')]).not.toBe('@fastify/otel');
    const span = telemetry.tracer.startSpan('unexported');
    expect(span.isRecording()).toBe(false);
    expect(span.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
    span.end();
  });

  it('refuses to start twice in one process until the first is shut down', async () => {
    telemetry = await startTelemetry({ service: 'identity', version: '0.1.0' });

    await expect(startTelemetry({ service: 'identity', version: '0.1.0' })).rejects.toThrow(/already running/);
    await telemetry.shutdown();
    telemetry = await startTelemetry({ service: 'identity', version: '0.1.0' });
    expect(telemetry.tracer.startSpan('after restart').spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('is a no-op with a pass-through fastify plugin when OTEL_SDK_DISABLED=true', async () => {
    process.env.OTEL_SDK_DISABLED = 'true';
    try {
      telemetry = await startTelemetry({ service: 'gateway', version: '0.1.0', otlpEndpoint: receiver.endpoint });
    } finally {
      delete process.env.OTEL_SDK_DISABLED;
    }
    const span = telemetry.tracer.startSpan('ignored');
    span.end();
    const plugin = telemetry.fastifyPlugin() as (app: unknown, opts: unknown, done: () => void) => void;
    let doneCalls = 0;
    plugin({}, {}, () => doneCalls++);

    expect(span.isRecording()).toBe(false);
    expect(doneCalls).toBe(1);
    await telemetry.shutdown();
    expect(receiver.requests).toHaveLength(0);
  });
});
