import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { startRedis, type RedisServer } from '@runnerhub/infra';
import { errorsPlugin } from './errors.js';
import { RateLimiter, rateLimitPlugin, type RateLimitConfig, type Verdict } from './rate-limit.js';

let server: RedisServer;
let dataDir: string;
const clients: Redis[] = [];

function client(url = server.url): Redis {
  // A stopped or silent server never closes its side: do not wait 2 s for it on disconnect.
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, disconnectTimeout: 10 });
  redis.on('error', () => undefined);
  clients.push(redis);
  return redis;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'rh-rate-limit-'));
  server = await startRedis({ dataDir });
});

beforeEach(async () => {
  await client().flushdb();
});

afterAll(async () => {
  for (const redis of clients) redis.disconnect();
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('RateLimiter', () => {
  test('counts requests down to zero remaining and refuses the next until the window resets', async () => {
    const limiter = new RateLimiter(client(), 1000);
    const bucket = { key: 'k', limit: 3, windowMs: 400 };
    const verdicts: Verdict[] = [];
    for (let i = 0; i < 4; i++) verdicts.push(await limiter.consume([bucket]));
    expect(verdicts.map((v) => [v.allowed, v.remaining])).toEqual([[true, 2], [true, 1], [true, 0], [false, 0]]);
    expect(verdicts[3]!.resetMs).toBeGreaterThan(0);
    expect(verdicts[3]!.resetMs).toBeLessThanOrEqual(400);

    await new Promise((resolve) => setTimeout(resolve, verdicts[3]!.resetMs + 50));
    expect(await limiter.consume([bucket])).toMatchObject({ allowed: true, remaining: 2 });
  });

  test('answers with the bucket that has the fewest requests left', async () => {
    const limiter = new RateLimiter(client(), 1000);
    const verdict = await limiter.consume([{ key: 'wide', limit: 10, windowMs: 60_000 }, { key: 'narrow', limit: 2, windowMs: 1_000 }]);
    expect(verdict).toMatchObject({ allowed: true, limit: 2, remaining: 1 });
  });

  test('a refusal names the exhausted bucket that resets last, and counts in no bucket', async () => {
    const limiter = new RateLimiter(client(), 1000);
    const short = { key: 'short', limit: 1, windowMs: 1_000 };
    const long = { key: 'long', limit: 1, windowMs: 30_000 };
    const roomy = { key: 'roomy', limit: 5, windowMs: 30_000 };
    await limiter.consume([short, long, roomy]);
    const refused = await limiter.consume([short, long, roomy]);
    expect(refused).toMatchObject({ allowed: false, limit: 1, remaining: 0 });
    expect(refused.resetMs).toBeGreaterThan(1_000);
    expect(await limiter.consume([roomy])).toMatchObject({ allowed: true, remaining: 3 });
  });

  test('two limiters on their own connections share the limit exactly, as two gateways do', async () => {
    const gateways = [new RateLimiter(client(), 1000), new RateLimiter(client(), 1000)];
    const bucket = { key: 'shared', limit: 10, windowMs: 60_000 };
    const verdicts = await Promise.all(Array.from({ length: 30 }, (_, i) => gateways[i % 2]!.consume([bucket])));
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(10);
  });

  test('a Redis that never answers fails the check within the timeout', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const limiter = new RateLimiter(client(`redis://127.0.0.1:${port}`), 150);
    const started = Date.now();
    await expect(limiter.consume([{ key: 'k', limit: 1, windowMs: 1_000 }])).rejects.toThrow(/within 150 ms/);
    expect(Date.now() - started).toBeLessThan(1_000);
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
});

const limits: RateLimitConfig = { RATE_LIMITS_ENABLED: true, RATE_LIMIT_USER_PER_HOUR: 2, RATE_LIMIT_LOGIN_PER_MINUTE: 3, RATE_LIMIT_LOGIN_PER_15_MINUTES: 10 };

async function gateway(config: Partial<RateLimitConfig> = {}, redis = client(), logLines: string[] = []) {
  const registry = new Registry();
  const app: FastifyInstance = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => void logLines.push(line) } } });
  await app.register(errorsPlugin);
  await app.register(rateLimitPlugin, { redis, registry, timeoutMs: 150, config: { ...limits, ...config } });
  const ok = async () => ({ ok: true });
  app.post('/api/auth/login', { config: { dialect: 'runnerhub', rateLimit: 'login' } }, ok);
  app.post('/auth/login', { config: { dialect: 'runnerpilot', rateLimit: 'login' } }, ok);
  app.post('/auth/register', { config: { dialect: 'runnerpilot', rateLimit: 'register' } }, ok);
  // Stands in for app.authenticate: the caller is set by a route onRequest hook.
  const authenticate = async (request: { headers: Record<string, unknown>; caller?: unknown }) => {
    request.caller = { userUid: String(request.headers['x-user']), organizationUid: 'o', role: 'admin', username: 'u', sessionId: 's', clientAddress: '' };
  };
  app.get('/api/jobs', { config: { dialect: 'runnerhub' }, onRequest: authenticate }, ok);
  app.get('/api/servers', { config: { dialect: 'birun' } }, ok);
  app.get('/health', ok);
  app.get('/metrics', ok);
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, registry };
}

interface Reply {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  json(): unknown;
}

/** A real HTTP request from a chosen loopback address, since the limits key on the client address. */
function send(app: FastifyInstance, options: { method?: string; url: string; address?: string; headers?: Record<string, string>; payload?: unknown }): Promise<Reply> {
  const { port } = app.server.address() as { port: number };
  const body = options.payload === undefined ? undefined : JSON.stringify(options.payload);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.url, localAddress: options.address ?? '127.0.0.1',
      headers: { ...options.headers, ...(body ? { 'content-type': 'application/json' } : {}) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => resolve({ statusCode: res.statusCode!, headers: res.headers, json: () => JSON.parse(text) }));
    });
    req.on('error', reject).end(body);
  });
}

const login = (app: FastifyInstance, username: string, address: string, url = '/api/auth/login') =>
  send(app, { method: 'POST', url, address, payload: url === '/auth/login' ? { email: username, password: 'x' } : { username, password: 'x' } });

describe('rateLimitPlugin', () => {
  test('a fourth login for one account within a minute is refused from any address, whatever the case or dialect', async () => {
    const { app } = await gateway();
    const statuses = [];
    statuses.push((await login(app, 'alice@example.com', '127.0.0.11')).statusCode);
    statuses.push((await login(app, 'Alice@Example.com', '127.0.0.12', '/auth/login')).statusCode);
    statuses.push((await login(app, 'ALICE@example.com', '127.0.0.13')).statusCode);
    const refused = await login(app, 'alice@example.com', '127.0.0.14');
    expect(statuses).toEqual([200, 200, 200]);
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ success: false, error: { code: 'RATE_LIMIT_EXCEEDED', message: expect.any(String) }, timestamp: expect.any(String) });
    expect(refused.headers).toMatchObject({ 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '0' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(Number(refused.headers['x-ratelimit-reset']) - Date.now() / 1000).toBeLessThanOrEqual(61);
    await app.close();
  });

  test('login attempts are limited per client address whatever the account, independently of the account bucket', async () => {
    const { app } = await gateway();
    for (const name of ['a', 'b', 'c']) expect((await login(app, name, '127.0.0.20')).statusCode).toBe(200);
    expect((await login(app, 'd', '127.0.0.20')).statusCode).toBe(429);
    const elsewhere = await login(app, 'd', '127.0.0.21');
    expect(elsewhere.statusCode).toBe(200);
    expect(elsewhere.headers['x-ratelimit-remaining']).toBe('2');
    await app.close();
  });

  test('the 15-minute bucket refuses on its own, and a limit of 0 is no limit', async () => {
    const { app } = await gateway({ RATE_LIMIT_LOGIN_PER_MINUTE: 0, RATE_LIMIT_LOGIN_PER_15_MINUTES: 2 });
    await login(app, 'bob', '127.0.0.30');
    await login(app, 'bob', '127.0.0.31');
    const refused = await login(app, 'bob', '127.0.0.32');
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['x-ratelimit-limit']).toBe('2');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(60);
    await app.close();
  });

  test('registrations are limited per client address, apart from login attempts', async () => {
    const { app } = await gateway();
    const register = (n: number) => send(app, { method: 'POST', url: '/auth/register', address: '127.0.0.40', payload: { email: `u${n}@example.com`, password: 'x' } });
    const statuses = [];
    for (let n = 0; n < 4; n++) statuses.push((await register(n)).statusCode);
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect((await login(app, 'carol', '127.0.0.40')).statusCode).toBe(200);
    await app.close();
  });

  test('authenticated requests are limited per user with the hourly limit in the headers', async () => {
    const { app } = await gateway();
    const jobs = (user: string) => send(app, { url: '/api/jobs', address: '127.0.0.50', headers: { 'x-user': user } });
    const first = await jobs('u1');
    expect(first.headers).toMatchObject({ 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '1' });
    const reset = Number(first.headers['x-ratelimit-reset']) - Date.now() / 1000;
    expect(reset).toBeGreaterThan(3590);
    expect(reset).toBeLessThanOrEqual(3601);
    expect((await jobs('u1')).statusCode).toBe(200);
    expect((await jobs('u1')).statusCode).toBe(429);
    expect((await jobs('u2')).statusCode).toBe(200);
    await app.close();
  });

  test('unauthenticated requests are limited per client address, refused in the route\'s dialect', async () => {
    const { app } = await gateway();
    const servers = (address: string) => send(app, { url: '/api/servers', address });
    await servers('127.0.0.60');
    await servers('127.0.0.60');
    const refused = await servers('127.0.0.60');
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ status: 'error', details: { code: 'RATE_LIMIT_EXCEEDED' } });
    expect((await servers('127.0.0.61')).statusCode).toBe(200);
    await app.close();
  });

  test('/health and /metrics are never limited', async () => {
    const { app } = await gateway();
    for (let i = 0; i < 4; i++) {
      for (const url of ['/health', '/metrics']) {
        const response = await send(app, { url });
        expect(response.statusCode).toBe(200);
        expect(response.headers['x-ratelimit-limit']).toBeUndefined();
      }
    }
    await app.close();
  });

  test('RATE_LIMITS_ENABLED=false sends no headers and refuses nothing', async () => {
    const { app } = await gateway({ RATE_LIMITS_ENABLED: false });
    for (let i = 0; i < 5; i++) {
      const response = await login(app, 'dave', '127.0.0.70');
      expect(response.statusCode).toBe(200);
      expect(response.headers['x-ratelimit-limit']).toBeUndefined();
    }
    await app.close();
  });

  test('with Redis down requests pass without headers, each failure is counted and one warning is logged', async () => {
    // A socket path nobody listens on: nothing can answer there (a stopped server's port could still be served).
    const nowhere = join(dataDir, 'no-redis.sock');
    const logLines: string[] = [];
    const { app, registry } = await gateway({}, client(nowhere), logLines);
    for (let i = 0; i < 5; i++) {
      const response = await login(app, 'erin', '127.0.0.80');
      expect(response.statusCode).toBe(200);
      expect(response.headers['x-ratelimit-limit']).toBeUndefined();
    }
    expect((await registry.getSingleMetric('runnerhub_rate_limit_errors_total')!.get()).values[0]!.value).toBe(5);
    expect(logLines.filter((line) => line.includes('rate limits not enforced'))).toHaveLength(1);
    await app.close();
  });
});
