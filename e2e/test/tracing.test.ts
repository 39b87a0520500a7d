import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADMIN, type Stack } from '@runnerhub/stack';
import { eventually, request, startTestStack } from './harness.js';

interface ExportedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
}

/** A minimal OTLP/HTTP JSON receiver: collects every span the services export. */
function startOtlpReceiver(): Promise<{ server: Server; url: string; spans: ExportedSpan[] }> {
  const spans: ExportedSpan[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        const payload = JSON.parse(body);
        for (const resourceSpans of payload.resourceSpans ?? []) {
          const service = resourceSpans.resource?.attributes?.find((a: { key: string }) => a.key === 'service.name')?.value?.stringValue;
          for (const scope of resourceSpans.scopeSpans ?? []) {
            for (const span of scope.spans ?? []) spans.push({ service, traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId ?? '', name: span.name });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans })));
}

let stack: Stack & { dispose(): Promise<void> };
let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  stack = await startTestStack({ services: ['identity', 'gateway'], env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } });
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
  receiver?.server.closeAllConnections();
  receiver?.server.close();
}, 60_000);

test('one login request produces a single trace that spans the gateway and identity', async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const response = await request(stack.gatewayUrl, 'POST', '/api/auth/login', {
    body: { username: ADMIN.username, password: ADMIN.password },
    headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
  });
  expect(response.status).toBe(200);

  const trace = await eventually('spans of both services in the trace', async () => {
    const inTrace = receiver.spans.filter((s) => s.traceId === traceId);
    const services = new Set(inTrace.map((s) => s.service));
    return services.has('gateway') && services.has('identity') ? inTrace : undefined;
  }, 15_000);

  const gatewayClient = trace.find((s) => s.service === 'gateway' && s.name === 'identity.v1.auth.login');
  const identityServer = trace.find((s) => s.service === 'identity' && s.name === 'identity.v1.auth.login');
  expect(gatewayClient).toBeDefined();
  expect(identityServer?.parentSpanId).toBe(gatewayClient?.spanId);
  expect(trace.some((s) => s.service === 'gateway' && /POST/.test(s.name))).toBe(true);
});
