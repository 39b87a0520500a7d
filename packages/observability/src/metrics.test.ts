import { request, Agent } from 'node:http';
import { createHttpMetrics, createMetricsRegistry, startMetricsServer, type MetricsServer } from './metrics.js';

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('metrics', () => {
  it('serves default Node metrics labelled with the service on GET /metrics', async () => {
    server = await startMetricsServer({ registry: createMetricsRegistry('inventory'), host: '127.0.0.1', port: 0 });
    expect(server.port).toBeGreaterThan(0);

    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    const body = await res.text();

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(body).toMatch(/^process_cpu_user_seconds_total\{service="inventory"\} /m);
    expect(body).toMatch(/^nodejs_heap_size_used_bytes\{service="inventory"\} /m);
  });

  it('answers 404 for any other path or method', async () => {
    server = await startMetricsServer({ registry: createMetricsRegistry('inventory'), host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${server.port}`;

    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metrics/extra`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${base}/metrics?name[]=up`)).status).toBe(200);
  });

  it('exposes HTTP request metrics with their labels and sub-millisecond to 5 s buckets', async () => {
    const registry = createMetricsRegistry('gateway');
    const http = createHttpMetrics(registry);
    http.requests.inc({ method: 'GET', route: '/api/jobs/:id', status: '200' });
    http.duration.observe({ method: 'GET', route: '/api/jobs/:id' }, 0.0003);

    const text = await registry.metrics();

    expect(text).toContain(
      'runnerhub_http_requests_total{method="GET",route="/api/jobs/:id",status="200",service="gateway"} 1',
    );
    expect(text).toMatch(/^runnerhub_http_request_duration_seconds_bucket\{le="0.0005",[^}]*route="\/api\/jobs\/:id"[^}]*\} 1$/m);
    expect(text).toMatch(/^runnerhub_http_request_duration_seconds_bucket\{le="5",[^}]*service="gateway"[^}]*\} 1$/m);
  });

  it('closes promptly while a scraper holds a keep-alive connection open', async () => {
    server = await startMetricsServer({ registry: createMetricsRegistry('metrics'), host: '127.0.0.1', port: 0 });
    const agent = new Agent({ keepAlive: true });
    const status = await new Promise<number | undefined>((resolve, reject) => {
      request({ host: '127.0.0.1', port: server!.port, path: '/metrics', agent }, (res) => {
        res.resume().on('end', () => resolve(res.statusCode));
      }).on('error', reject).end();
    });
    expect(status).toBe(200);

    const started = Date.now();
    await server.close();
    server = undefined;
    agent.destroy();

    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('rejects when the port is already taken', async () => {
    server = await startMetricsServer({ registry: createMetricsRegistry('a'), host: '127.0.0.1', port: 0 });

    await expect(
      startMetricsServer({ registry: createMetricsRegistry('b'), host: '127.0.0.1', port: server.port }),
    ).rejects.toThrow(/EADDRINUSE/);
  });
});
