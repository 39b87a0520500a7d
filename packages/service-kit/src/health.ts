import { timestampNow } from '@bufbuild/protobuf/wkt';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { DependencyHealthSchema, HealthCheckResponseSchema } from '@runnerhub/contracts';
import { withTimeout } from './timeout.js';

/** A dependency a service cannot work without, checked on every health request. */
export interface DependencyCheck {
  name: string;
  check(): Promise<void>;
}

async function runCheck(dependency: DependencyCheck, timeoutMs: number): Promise<MessageInitShape<typeof DependencyHealthSchema>> {
  const started = performance.now();
  try {
    await withTimeout(dependency.check(), timeoutMs, () => new Error(`no answer within ${timeoutMs} ms`));
    return { name: dependency.name, status: 'healthy', message: '', latencyMs: performance.now() - started };
  } catch (error) {
    return { name: dependency.name, status: 'unhealthy', message: (error as Error).message, latencyMs: performance.now() - started };
  }
}

export async function checkHealth(
  service: { name: string; version: string; startedAt: number },
  dependencies: DependencyCheck[],
  timeoutMs: number,
): Promise<MessageInitShape<typeof HealthCheckResponseSchema>> {
  const results = await Promise.all(dependencies.map((d) => runCheck(d, timeoutMs)));
  const healthy = results.every((r) => r.status === 'healthy');
  return {
    service: service.name,
    version: service.version,
    status: healthy ? 'healthy' : 'unhealthy',
    dependencies: results,
    uptimeSeconds: (Date.now() - service.startedAt) / 1000,
    checkedAt: timestampNow(),
  };
}
