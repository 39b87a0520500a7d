import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@runnerhub/infra';
import { startStack, type Stack, type StackOptions } from '@runnerhub/stack';

/** The whole platform as real processes on free ports, in a throw-away directory. */
export async function startTestStack(options: Partial<StackOptions> = {}): Promise<Stack & { dispose(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rh-e2e-'));
  const { env, ...rest } = options;
  const stack = await startStack({
    dataDir,
    ports: { gateway: await freePort(), metricsBase: 0 },
    ...rest,
    // Rate limits are off unless a test turns them on: tests log in far more often than people do.
    env: { LOG_LEVEL: 'warn', DISCOVERY_INTERVAL_MS: '500', ARGON2_MEMORY_KIB: '4096', ARGON2_TIME_COST: '1', RATE_LIMITS_ENABLED: 'false', ...env },
  });
  try {
    await stack.waitHealthy(45_000);
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return {
    ...stack,
    async dispose() {
      await stack.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface JsonResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export async function request<T = any>(baseUrl: string, method: string, path: string, options: { body?: unknown; token?: string; headers?: Record<string, string> } = {}): Promise<JsonResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers['content-type'] ??= 'application/json';
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface ExportedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
}

export interface OtlpReceiver {
  url: string;
  spans: ExportedSpan[];
  close(): void;
}

/** A minimal OTLP/HTTP JSON receiver on loopback: collects every span the services export. */
export function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ExportedSpan[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        for (const resourceSpans of JSON.parse(body || '{}').resourceSpans ?? []) {
          const service = resourceSpans.resource?.attributes?.find((a: { key: string }) => a.key === 'service.name')?.value?.stringValue;
          for (const scope of resourceSpans.scopeSpans ?? []) {
            for (const span of scope.spans ?? []) spans.push({ service, traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId ?? '', name: span.name });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        spans,
        close() {
          server.closeAllConnections();
          server.close();
        },
      }),
    ),
  );
}
