import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { ClientContext, Redis, Result } from 'ioredis';
import { Counter, type Registry } from 'prom-client';
import { BusError } from '@runnerhub/bus';
import type { ConfigOf } from '@runnerhub/config';
import { withTimeout } from '@runnerhub/service-kit';
import type { rateLimitEnv } from '../config.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** 'login' and 'register' count attempts per client address (login also per account); false exempts the route. */
    rateLimit?: 'login' | 'register' | false;
  }
}

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext> {
    rateLimitConsume(keyCount: number, ...keysThenArgs: Array<string | number>): Result<number[], Context>;
  }
}

export interface Bucket {
  key: string;
  limit: number;
  windowMs: number;
}

export interface Verdict {
  allowed: boolean;
  limit: number;
  remaining: number;
  resetMs: number;
}

/**
 * Fixed windows: a key's window starts at its first hit and ends windowMs
 * later, so X-RateLimit-Reset is exact. The script checks every bucket and
 * counts the request in all of them only when none is exhausted, in one
 * atomic step: limits hold across gateways and a refused request costs nothing.
 * KEYS = buckets; ARGV = limit, windowMs per bucket. Returns refused (0/1),
 * then used count and milliseconds to reset per bucket.
 */
const CONSUME = `
local state, refused = {}, 0
for i, key in ipairs(KEYS) do
  local limit, window = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local ttl, used = redis.call('PTTL', key), 0
  if ttl > 0 then used = tonumber(redis.call('GET', key)) else ttl = window end
  if used >= limit then refused = 1 end
  state[2 * i - 1], state[2 * i] = used, ttl
end
if refused == 0 then
  for i, key in ipairs(KEYS) do
    if state[2 * i - 1] == 0 then redis.call('SET', key, 1, 'PX', ARGV[2 * i]) else redis.call('INCR', key) end
    state[2 * i - 1] = state[2 * i - 1] + 1
  end
end
table.insert(state, 1, refused)
return state
`;

export class RateLimiter {
  constructor(private readonly redis: Redis, private readonly timeoutMs: number) {
    redis.defineCommand('rateLimitConsume', { lua: CONSUME });
  }

  /** Counts one request in every bucket, or in none when any is exhausted; the verdict is the most restrictive bucket's. */
  async consume(buckets: Bucket[]): Promise<Verdict> {
    const args = buckets.flatMap((b) => [b.limit, b.windowMs]);
    const [refused, ...state] = await withTimeout(this.redis.rateLimitConsume(buckets.length, ...buckets.map((b) => b.key), ...args), this.timeoutMs, () => new Error(`redis did not answer within ${this.timeoutMs} ms`));
    const verdicts = buckets.map((b, i) => ({ limit: b.limit, remaining: Math.max(0, b.limit - state[2 * i]!), resetMs: state[2 * i + 1]! }));
    // Fewest remaining wins; on a tie the later reset, so Retry-After covers every exhausted bucket.
    const tightest = verdicts.reduce((a, v) => (v.remaining < a.remaining || (v.remaining === a.remaining && v.resetMs > a.resetMs) ? v : a));
    return { allowed: refused === 0, ...tightest };
  }
}

export type RateLimitConfig = ConfigOf<typeof rateLimitEnv>;

const MINUTE = 60_000;
const NEVER_LIMITED = new Set(['/health', '/v1/health', '/metrics']);
const WARN_INTERVAL_MS = 10_000;

/** Hashed so that keys stay short whatever a client sends, and Redis holds no account names. */
function accountOf(body: unknown): string | undefined {
  const { username, email } = (body ?? {}) as { username?: unknown; email?: unknown };
  const name = typeof username === 'string' ? username : typeof email === 'string' ? email : undefined;
  return name ? createHash('sha256').update(name.toLowerCase()).digest('hex').slice(0, 32) : undefined;
}

/**
 * The documented limits (DESIGN.md §1): per user, or per client address
 * before authentication; login and registration attempts per address and
 * per account. Runs at preValidation, after the route's onRequest
 * authentication and once the body (the account) is parsed. Redis trouble
 * lets requests through: a limiter must not take the API down.
 */
export const rateLimitPlugin = fp(async (app, options: { redis: Redis; registry: Registry; timeoutMs: number; config: RateLimitConfig }) => {
  const { config } = options;
  if (!config.RATE_LIMITS_ENABLED) return;
  const limiter = new RateLimiter(options.redis, options.timeoutMs);
  const errors = new Counter({ name: 'runnerhub_rate_limit_errors_total', help: 'Rate-limit checks that failed and let the request through', registers: [options.registry] });
  let lastWarningAt = 0;

  const attempts = (scope: string): Bucket[] => [
    { key: `${scope}:1m`, limit: config.RATE_LIMIT_LOGIN_PER_MINUTE, windowMs: MINUTE },
    { key: `${scope}:15m`, limit: config.RATE_LIMIT_LOGIN_PER_15_MINUTES, windowMs: 15 * MINUTE },
  ];

  function bucketsOf(request: FastifyRequest): Bucket[] {
    const kind = request.routeOptions.config?.rateLimit;
    if (kind === false || NEVER_LIMITED.has(request.routeOptions.url ?? '')) return [];
    if (kind === 'login' || kind === 'register') {
      const account = kind === 'login' ? accountOf(request.body) : undefined;
      return [...attempts(`rl:${kind}:address:${request.ip}`), ...(account ? attempts(`rl:login:account:${account}`) : [])];
    }
    const who = request.caller ? `user:${request.caller.userUid}` : `address:${request.ip}`;
    return [{ key: `rl:${who}:1h`, limit: config.RATE_LIMIT_USER_PER_HOUR, windowMs: 60 * MINUTE }];
  }

  app.addHook('preValidation', async (request, reply) => {
    const buckets = bucketsOf(request).filter((b) => b.limit > 0);
    if (buckets.length === 0) return;
    let verdict: Verdict;
    try {
      verdict = await limiter.consume(buckets);
    } catch (error) {
      errors.inc();
      // One line per outage interval, not one per request.
      if (Date.now() - lastWarningAt >= WARN_INTERVAL_MS) {
        lastWarningAt = Date.now();
        request.log.warn({ err: error }, 'rate limits not enforced: redis failed; letting requests through');
      }
      return;
    }
    reply.header('x-ratelimit-limit', verdict.limit);
    reply.header('x-ratelimit-remaining', verdict.remaining);
    reply.header('x-ratelimit-reset', Math.ceil((Date.now() + verdict.resetMs) / 1000));
    if (!verdict.allowed) {
      const retryAfter = Math.max(1, Math.ceil(verdict.resetMs / 1000));
      reply.header('retry-after', retryAfter);
      throw new BusError('RATE_LIMIT_EXCEEDED', `rate limit of ${verdict.limit} requests exceeded; retry in ${retryAfter} s`);
    }
  });
});
