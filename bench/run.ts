/**
 * RunnerHub's foundation benchmark (`./rh bench`).
 *
 * 1. Authenticated GET /common/me through gateway → NATS → identity, against
 *    a bare fastify server answering the same JSON from memory.
 * 2. RSS of every service right after start and idle after the load.
 *
 * Prints Markdown to stdout (progress to stderr) and writes it to
 * bench/results/latest.md. Exits 0 whether targets pass or fail; 1 when the
 * benchmark itself could not run.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, isAlive, readPid, stopPid } from '@runnerhub/infra';
import { startStack, type ServiceName, type Stack } from '@runnerhub/stack';
import { runLoad, stopLoad, type LoadResult } from './lib/load.js';
import { CpuMeter, mb, OTHERS, processTree, statusKb } from './lib/proc.js';
import { meanMsBetween, scrape, type Samples } from './lib/prom.js';
import { rateLimitHeaders, rateLimitOverrides } from './lib/ratelimits.js';
import { fixed, int, progress, Report, verdict } from './lib/report.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const RESULTS_FILE = join(BENCH_DIR, 'results', 'latest.md');

const DURATION_S = (() => {
  const raw = process.env.BENCH_DURATION_S;
  const value = raw ? Number(raw) : 20;
  if (!Number.isFinite(value) || value < 1 || value > 600) {
    console.error(`BENCH_DURATION_S must be a number of seconds between 1 and 600 (got ${JSON.stringify(raw)})`);
    process.exit(2);
  }
  return Math.round(value);
})();
const CONNECTIONS = 50;
const WARMUP_S = 2;
const IDLE_S = 5;
const TARGETS = { ratioPct: 35, p99Ms: 25, rssMb: 90 };

const report = new Report();

// ---------------------------------------------------------------- cleanup ---
// Everything started is registered here and undone in reverse order, once,
// on success, failure, Ctrl-C or the watchdog.
const cleanups: Array<{ what: string; run: () => Promise<void> | void }> = [];
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const step of cleanups.reverse()) {
      try {
        await step.run();
      } catch (error) {
        progress(`cleanup: ${step.what} failed: ${(error as Error).message}`);
      }
    }
  })();
  return cleaning;
}

let interrupted = false;
function abort(reason: string, code: number): void {
  // Ctrl-C under pnpm delivers SIGINT and then SIGTERM within milliseconds: every
  // signal after the first is only noted, and cleanup itself is bounded instead.
  if (interrupted) {
    progress(`${reason}: already stopping`);
    return;
  }
  interrupted = true;
  progress(`${reason}: stopping the load, the stack and the bare server`);
  stopLoad();
  setTimeout(() => {
    progress('cleanup did not finish within 60 s: exiting; check for leftover processes under the data directory');
    process.exit(code);
  }, 60_000).unref();
  void cleanup().finally(() => process.exit(code));
}
process.on('SIGINT', () => abort('SIGINT', 130));
process.on('SIGTERM', () => abort('SIGTERM', 143));
process.on('SIGHUP', () => abort('SIGHUP', 129));
// The parent (pnpm, a terminal) may go away first: a closed pipe must not crash the cleanup.
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);

// The whole run is bounded: two measured runs, warm-ups, start, idle wait and stop, with room to spare.
const WATCHDOG_S = 2 * (DURATION_S + WARMUP_S + 40) + IDLE_S + 300;
setTimeout(() => abort(`watchdog: the benchmark did not finish within ${WATCHDOG_S} s`, 1), WATCHDOG_S * 1000).unref();

// ---------------------------------------------------------------- helpers ---
async function http(method: string, url: string, options: { body?: unknown; token?: string } = {}): Promise<{ status: number; text: string; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(url, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

async function expectOk(what: string, response: Promise<{ status: number; text: string; headers: Headers }>): Promise<{ text: string; headers: Headers }> {
  const { status, text, headers } = await response;
  if (status < 200 || status >= 300) throw new Error(`${what}: HTTP ${status}: ${text.slice(0, 500)}`);
  return { text, headers };
}

/** Forks bare-server.mjs (plain JavaScript, no loader) and resolves with its port once it listens. */
async function startBareServer(body: unknown): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(join(BENCH_DIR, 'bare-server.mjs'), [], {
    cwd: BENCH_DIR,
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  cleanups.push({
    what: 'stop the bare server',
    run: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the bare server did not start within 15 s')), 15_000);
    child.once('message', (message: { port: number }) => {
      clearTimeout(timer);
      resolve(message.port);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the bare server exited during start (code ${code})`));
    });
    child.send({ body });
  });
  return { child, port };
}

function rssTable(stack: Stack): Map<ServiceName, { rss?: number; hwm?: number }> {
  const result = new Map<ServiceName, { rss?: number; hwm?: number }>();
  for (const [name, service] of stack.services) {
    const pid = service.pid;
    result.set(name, pid === undefined ? {} : { rss: mb(statusKb(pid, 'VmRSS')), hwm: mb(statusKb(pid, 'VmHWM')) });
  }
  return result;
}

/** The subject (or route) whose histogram gained the most observations between two scrapes. */
function busiest(before: Samples, after: Samples, name: string, label: string, filter: Record<string, string>): string | undefined {
  const counts = (samples: Samples) => {
    const map = new Map<string, number>();
    for (const s of samples) {
      if (s.name !== `${name}_count` || !Object.entries(filter).every(([k, v]) => s.labels[k] === v)) continue;
      const key = s.labels[label] ?? '';
      map.set(key, (map.get(key) ?? 0) + s.value);
    }
    return map;
  };
  const a = counts(before);
  let best: string | undefined;
  let bestDelta = 0;
  for (const [key, value] of counts(after)) {
    const delta = value - (a.get(key) ?? 0);
    if (delta > bestDelta) [best, bestDelta] = [key, delta];
  }
  return best;
}

/**
 * Guards against a recycled pid: only a process started on this run's data
 * directory is stopped (redis-server rewrites its command line, so it is
 * recognised by name; its pid file is inside the data directory all the same).
 */
function ownsDataDir(pid: number, dataDir: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(dataDir) || cmdline.startsWith('redis-server');
  } catch {
    return false;
  }
}

/** The latency breakdown is a bonus: without /metrics it shows n/a instead of failing the run. */
async function scrapeOrNothing(url: string): Promise<Samples> {
  return scrape(url).catch((error: Error) => {
    progress(`could not read ${url}: ${error.message}`);
    return [];
  });
}

const loadavg = () => os.loadavg().map((v) => v.toFixed(2)).join(' / ');

// ------------------------------------------------------------------- main ---
async function main(): Promise<void> {
  const cpus = os.cpus();
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: BENCH_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // not a git checkout
  }
  report.add('# RunnerHub foundation benchmark', '');
  report.table(['machine', ''], [
    ['date', new Date().toISOString()],
    ['nproc', String(os.availableParallelism())],
    ['CPU', `${cpus[0]?.model.trim() ?? 'unknown'} (${cpus.length} logical)`],
    ['memory', `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`],
    ['kernel', `${os.type()} ${os.release()}`],
    ['Node.js', process.version],
    ['commit', commit],
    ['environment passed to the services', ['NODE_OPTIONS', 'OTEL_SDK_DISABLED', 'OTEL_EXPORTER_OTLP_ENDPOINT'].filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]}`).join(', ') || 'defaults (LOG_LEVEL=warn)'],
    ['load average at start (1/5/15 min)', loadavg()],
    ['measured duration per target', `${DURATION_S} s after ${WARMUP_S} s warm-up, ${CONNECTIONS} connections`],
  ], ['l', 'l']);

  const dataDir = mkdtempSync(join(os.tmpdir(), 'rh-bench-'));
  cleanups.push({ what: `remove ${dataDir}`, run: () => rmSync(dataDir, { recursive: true, force: true }) });

  const limits = await rateLimitOverrides();
  const identityMetricsPort = await freePort();
  const serviceEnv: Partial<Record<ServiceName, Record<string, string>>> = { ...limits.env };
  serviceEnv.identity = { ...serviceEnv.identity, METRICS_PORT: String(identityMetricsPort) };

  progress(`starting the platform in ${dataDir}`);
  const startedAt = performance.now();
  const starting = startStack({
    dataDir,
    ports: { gateway: await freePort(), metricsBase: 0 },
    env: { LOG_LEVEL: 'warn' },
    serviceEnv,
  });
  cleanups.push({
    what: 'stop the platform',
    run: async () => {
      await (await starting.catch(() => undefined))?.stop();
      // Whatever a failed start left behind: the servers' own pid files.
      for (const pidFile of ['nats/nats.pid', 'postgres/pgdata/postmaster.pid', 'redis/redis.pid']) {
        const pid = readPid(join(dataDir, pidFile));
        if (pid !== undefined && isAlive(pid) && ownsDataDir(pid, dataDir)) await stopPid(pid, 15_000, pidFile.startsWith('postgres') ? 'SIGINT' : 'SIGTERM');
      }
    },
  });
  const stack = await starting;
  await stack.waitHealthy(60_000);
  const startS = (performance.now() - startedAt) / 1000;
  const rssAfterStart = rssTable(stack);
  progress(`platform healthy after ${startS.toFixed(1)} s at ${stack.gatewayUrl}`);

  // A user of its own, and the JSON the bare server must return.
  const account = { full_name: 'Bench User', email: 'bench-user@runnerhub.local', password: 'bench-password-1234' };
  await expectOk('POST /auth/register', http('POST', `${stack.gatewayUrl}/auth/register`, { body: account }));
  const login = JSON.parse((await expectOk('POST /auth/login', http('POST', `${stack.gatewayUrl}/auth/login`, { body: { email: account.email, password: account.password } }))).text) as { access_token: string };
  const token = login.access_token;
  const me = await expectOk('GET /common/me', http('GET', `${stack.gatewayUrl}/common/me`, { token }));
  const meBody = JSON.parse(me.text) as unknown;
  const limitHeaders = rateLimitHeaders(me.headers);

  const { child: bare, port: barePort } = await startBareServer(meBody);
  const bareUrl = `http://127.0.0.1:${barePort}/common/me`;
  const bareCheck = await expectOk('GET /common/me on the bare server', http('GET', bareUrl));
  if (bareCheck.text !== JSON.stringify(meBody)) throw new Error(`the bare server answers ${bareCheck.text}, the platform ${me.text}`);
  const bareRssAfterStart = bare.pid === undefined ? undefined : mb(statusKb(bare.pid, 'VmRSS'));
  progress(`bare fastify server (pid ${bare.pid}) at ${bareUrl}; both answer ${me.text.length} bytes`);

  // CPU per process group, to see where the time goes.
  const infraPids = {
    nats: readPid(join(dataDir, 'nats', 'nats.pid')),
    postgres: readPid(join(dataDir, 'postgres', 'pgdata', 'postmaster.pid')),
    redis: readPid(join(dataDir, 'redis', 'redis.pid')),
  };
  const cpu = new CpuMeter(() => {
    const groups = new Map<string, number[]>();
    for (const [name, service] of stack.services) if (service.pid !== undefined) groups.set(name, [service.pid]);
    if (infraPids.nats) groups.set('nats-server', [infraPids.nats]);
    if (infraPids.postgres) groups.set('postgres (all processes)', processTree(infraPids.postgres));
    if (infraPids.redis) groups.set('redis', [infraPids.redis]);
    if (bare.pid) groups.set('bare fastify server', [bare.pid]);
    groups.set('bench process (autocannon)', [process.pid]);
    return groups;
  });

  const measure = async (label: string, url: string, headers?: Record<string, string>) => {
    progress(`${label}: warm-up ${WARMUP_S} s`);
    await runLoad({ url, headers, connections: CONNECTIONS, durationS: WARMUP_S });
    if (interrupted) throw new Error('interrupted');
    progress(`${label}: measuring ${DURATION_S} s with ${CONNECTIONS} connections`);
    const gatewayBefore = await scrapeOrNothing(`${stack.gatewayUrl}/metrics`);
    const identityBefore = await scrapeOrNothing(`http://127.0.0.1:${identityMetricsPort}/metrics`);
    cpu.start();
    const result = await runLoad({ url, headers, connections: CONNECTIONS, durationS: DURATION_S });
    const cpuPct = cpu.stop();
    const gatewayAfter = await scrapeOrNothing(`${stack.gatewayUrl}/metrics`);
    const identityAfter = await scrapeOrNothing(`http://127.0.0.1:${identityMetricsPort}/metrics`);
    if (interrupted) throw new Error('interrupted');
    progress(`${label}: ${int(result.rps)} req/s, p99 ${fixed(result.p99Ms, 2)} ms, load average ${loadavg()}`);
    return { result, cpuPct, gatewayBefore, gatewayAfter, identityBefore, identityAfter, loadavg: loadavg() };
  };

  const platform = await measure('platform', `${stack.gatewayUrl}/common/me`, { authorization: `Bearer ${token}` });
  const baseline = await measure('bare fastify', bareUrl);

  progress(`idle ${IDLE_S} s before reading RSS`);
  await new Promise((r) => setTimeout(r, IDLE_S * 1000));
  const rssIdle = rssTable(stack);

  // ------------------------------------------------------------ report ---
  const p = platform.result;
  const b = baseline.result;
  const ratio = (p.rps / b.rps) * 100;
  const row = (name: string, r: LoadResult) => [
    name, int(r.rps), fixed(r.p50Ms, 2), fixed(r.p90Ms, 2), fixed(r.p99Ms, 2), fixed(r.maxMs, 1), int(r.requests), String(r.non2xx), `${r.errors}/${r.timeouts}`,
  ];
  report.add(`## 1. Authenticated GET /common/me: platform vs bare fastify`, '');
  report.add(`${CONNECTIONS} connections, ${DURATION_S} s each after a ${WARMUP_S} s warm-up, autocannon in the bench process; each server in its own process. Latency in ms, from every 2xx response.`, '');
  report.table(
    ['target', 'req/s (2xx)', 'p50', 'p90', 'p99', 'max', 'requests', 'non-2xx', 'errors/timeouts'],
    [row('platform: gateway → NATS → identity (JWT, Postgres)', p), row('bare fastify, same JSON from memory', b), ['**platform / bare**', `**${fixed(ratio)} %**`, '', '', '', '', '', '', '']],
  );
  report.table(['target', 'goal', 'measured', 'result'], [
    ['throughput ratio platform / bare', `≥ ${TARGETS.ratioPct} %`, `${fixed(ratio)} %`, verdict(ratio >= TARGETS.ratioPct)],
    ['platform p99 latency', `< ${TARGETS.p99Ms} ms`, `${fixed(p.p99Ms, 2)} ms`, verdict(p.p99Ms < TARGETS.p99Ms)],
  ], ['l', 'l', 'r', 'l']);
  const otherCodes = (r: LoadResult) => Object.entries(r.statusCodes).filter(([code]) => !code.startsWith('2')).map(([code, n]) => `${n}×${code}`).join(', ');
  if (p.non2xx + b.non2xx > 0) report.add(`Non-2xx responses: platform ${otherCodes(p) || 'none'}; bare ${otherCodes(b) || 'none'}.`, '');
  if (p.statusCodes['429']) report.add(`**Warning:** the platform answered 429 ${p.statusCodes['429']} times: a rate limit the benchmark could not raise is active, and the platform figures are not comparable.`, '');

  if (limits.notes.length > 0) {
    report.add('Rate limits, raised for this run through the services\' environment where possible:', ...limits.notes.map((note) => `- ${note}`), '');
  } else {
    report.add('Rate limits: no service declares a rate-limit setting, so none was raised.');
  }
  report.add(
    limitHeaders.length > 0 ? `The platform's response still carried rate-limit headers: ${limitHeaders.join(', ')}.` : 'No rate-limit headers on the platform\'s response.',
    '',
  );

  // Where the platform's time goes: means of the services' own histograms over the measured window.
  const routeName = 'runnerhub_http_request_duration_seconds';
  const busName = 'runnerhub_bus_request_duration_seconds';
  const route = busiest(platform.gatewayBefore, platform.gatewayAfter, routeName, 'route', {}) ?? '/common/me';
  const subject = busiest(platform.gatewayBefore, platform.gatewayAfter, busName, 'subject', { role: 'client' }) ?? '?';
  const httpMean = meanMsBetween(platform.gatewayBefore, platform.gatewayAfter, routeName, { route });
  const clientMean = meanMsBetween(platform.gatewayBefore, platform.gatewayAfter, busName, { subject, role: 'client' });
  const serverMean = meanMsBetween(platform.identityBefore, platform.identityAfter, busName, { subject, role: 'server' });
  const diff = (a?: number, c?: number) => (a === undefined || c === undefined ? undefined : a - c);
  report.add('### Where the platform\'s time goes (means over the measured window)', '');
  report.table(['segment', 'mean ms', 'source'], [
    ['seen by the client (autocannon)', fixed(p.meanMs, 2), 'autocannon'],
    ['… outside the gateway handler: TCP, kernel, event-loop queueing in gateway and client', fixed(diff(p.meanMs, httpMean), 2), 'client − gateway HTTP'],
    [`… gateway handling ${route}`, fixed(httpMean, 2), `gateway ${routeName}`],
    ['…… gateway itself: JWT verify (EdDSA), routing, tracing, serialisation', fixed(diff(httpMean, clientMean), 2), 'gateway HTTP − bus client'],
    [`…… bus round trip ${subject}`, fixed(clientMean, 2), 'gateway bus client'],
    ['……… NATS transit, encode/decode, queueing in identity', fixed(diff(clientMean, serverMean), 2), 'bus client − bus server'],
    ['……… identity handler (Prisma → Postgres)', fixed(serverMean, 2), `identity ${busName}`],
  ], ['l', 'r', 'l']);

  const capacity = os.availableParallelism() * 100;
  const names = [...new Set([...platform.cpuPct.keys(), ...baseline.cpuPct.keys()])];
  const total = (m: Map<string, number>) => [...m.values()].reduce((s, v) => s + v, 0);
  report.add(`### CPU during each measured run (% of one core; the machine has ${capacity} %)`, '');
  report.table(['process', 'platform run', 'bare run'], [
    ...names.map((name) => [name, fixed(platform.cpuPct.get(name)), fixed(baseline.cpuPct.get(name))]),
    ['**machine total**', `**${fixed(total(platform.cpuPct))}**`, `**${fixed(total(baseline.cpuPct))}**`],
  ]);
  const disturbance = Math.max(platform.cpuPct.get(OTHERS) ?? 0, baseline.cpuPct.get(OTHERS) ?? 0);
  if (disturbance > 20) {
    report.add(`**Warning:** other work on this machine used up to ${fixed(disturbance)} % of a core during a measured run; the numbers above are disturbed by it. Rerun on a quiet machine for figures to compare.`, '');
  }
  report.add(`Load average (1/5/15 min) after the platform run: ${platform.loadavg}; after the bare run: ${baseline.loadavg}.`, '');

  report.add('## 2. Memory of each service (VmRSS)', '');
  report.add(`"after start": right after every service reported healthy (${fixed(startS)} s after launch). "idle after load": ${IDLE_S} s after the last measured run. "peak": VmHWM over the whole run. The target applies to idle after load.`, '');
  const rssRows = [...stack.services.keys()].map((name) => {
    const start = rssAfterStart.get(name);
    const idle = rssIdle.get(name);
    return [
      name, fixed(start?.rss), fixed(idle?.rss), fixed(idle?.hwm), `< ${TARGETS.rssMb} MB`,
      idle?.rss === undefined ? 'FAIL (not running)' : verdict(idle.rss < TARGETS.rssMb),
    ];
  });
  if (bare.pid !== undefined) {
    rssRows.push(['*bare fastify server (reference)*', fixed(bareRssAfterStart), fixed(mb(statusKb(bare.pid, 'VmRSS'))), fixed(mb(statusKb(bare.pid, 'VmHWM'))), '—', '—']);
  }
  report.table(['service', 'after start MB', 'idle after load MB', 'peak MB', 'target', 'result'], rssRows, ['l', 'r', 'r', 'r', 'l', 'l']);
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  if (!interrupted) {
    progress(`benchmark failed: ${(error as Error).stack ?? String(error)}`);
    report.add('', `**The benchmark failed:** ${(error as Error).message}`, '');
  }
} finally {
  if (!interrupted) {
    progress('stopping the platform');
    await cleanup();
  }
}
if (!interrupted) {
  report.write(RESULTS_FILE);
  progress(`written to ${RESULTS_FILE}`);
  process.exit(failed ? 1 : 0);
}
