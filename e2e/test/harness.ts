import { mkdtempSync, rmSync } from 'node:fs';
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

export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
