import autocannon from 'autocannon';

export interface LoadOptions {
  url: string;
  /** GET unless set. */
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** Request bodies, one per connection in turn (connection i sends bodies[i % length]). */
  bodies?: string[];
  connections: number;
  durationS: number;
}

export interface LoadResult {
  requests: number;
  durationS: number;
  /** 2xx responses per second: fast errors must not pass for throughput. */
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
}

/** The running autocannon instance, so that Ctrl-C can stop it. */
let current: { stop(): void } | undefined;

export function stopLoad(): void {
  current?.stop();
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

/**
 * One autocannon run. Latency percentiles are computed from every 2xx
 * response's own time (autocannon's histogram rounds to whole milliseconds,
 * too coarse for a server that answers in 2 ms).
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  let samples = new Float64Array(1 << 16);
  let count = 0;
  // Without a callback autocannon returns its event emitter, which is also a promise of the result.
  const bodies = options.bodies ?? [];
  let nextBody = 0;
  const instance = autocannon({
    url: options.url,
    method: options.method ?? 'GET',
    headers: options.headers,
    ...(bodies.length > 0
      ? {
          body: bodies[0],
          // Each connection keeps its own body for the whole run (one account per connection, say).
          setupClient: (client: { setBody(body: string): void }) => client.setBody(bodies[nextBody++ % bodies.length]!),
        }
      : {}),
    connections: options.connections,
    duration: options.durationS,
    timeout: 10,
  }) as unknown as autocannon.Instance & PromiseLike<autocannon.Result>;
  current = instance;
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode < 200 || statusCode >= 300) return;
    if (count === samples.length) {
      const grown = new Float64Array(samples.length * 2);
      grown.set(samples);
      samples = grown;
    }
    samples[count++] = responseTime;
  });
  // autocannon stops itself after `duration`; this guard bounds the wait if a server hangs.
  const guard = setTimeout(() => instance.stop(), (options.durationS + 30) * 1000);
  try {
    const result = await instance;
    const sorted = samples.slice(0, count).sort();
    let sum = 0;
    for (const value of sorted) sum += value;
    const statusCodes: Record<string, number> = {};
    for (const [code, stats] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = (stats as { count: number }).count;
    return {
      requests: result.requests.total,
      durationS: result.duration,
      rps: count / result.duration,
      p50Ms: percentile(sorted, 50),
      p90Ms: percentile(sorted, 90),
      p99Ms: percentile(sorted, 99),
      meanMs: count ? sum / count : Number.NaN,
      maxMs: count ? sorted[count - 1]! : Number.NaN,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      statusCodes,
    };
  } finally {
    clearTimeout(guard);
    current = undefined;
  }
}
