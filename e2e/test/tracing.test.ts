import { ADMIN, type Stack } from '@runnerhub/stack';
import { eventually, request, startOtlpReceiver, startTestStack, type OtlpReceiver } from './harness.js';

let stack: Stack & { dispose(): Promise<void> };
let receiver: OtlpReceiver;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  stack = await startTestStack({ services: ['identity', 'gateway'], env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } });
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
  receiver?.close();
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
