/**
 * RunnerHub's foundation benchmark (`./rh bench`).
 *
 * On the whole platform:
 * 1. Authenticated GET /common/me through gateway → NATS → identity, against
 *    a bare fastify server answering the same JSON from memory.
 * 2. RSS of every service right after start and idle after the load.
 * Then, on a second platform of identity and gateway only:
 * 3. What verifying an access token adds per request (lib/auth.ts).
 * 4. Logins per second with argon2id at identity's cost (lib/login.ts).
 *
 * Prints Markdown to stdout (progress to stderr) and writes it to
 * bench/results/latest.md. Exits 0 whether targets pass or fail; 1 when the
 * benchmark itself could not run.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, isAlive, readPid, stopPid } from '@runnerhub/infra';
import { startStack, type ServiceName, type Stack } from '@runnerhub/stack';
import { tokenVerificationBench, type SectionContext } from './lib/auth.js';
import { expectOk, forkServer, http } from './lib/http.js';
import { checkInterrupted, cleanup, lifecycle, onCleanup } from './lib/lifecycle.js';
import { runLoad, stopLoad, type LoadResult } from './lib/load.js';
import { LOGIN_CONNECTIONS, loginBench, loginRateLimits } from './lib/login.js';
import { CpuMeter, mb, OTHERS, processTree, statusKb } from './lib/proc.js';
import { busiest, meanMsBetween, scrapeOrNothing } from './lib/prom.js';
import { rateLimitHeaders, rateLimitOverrides, type RateLimitOverrides } from './lib/ratelimits.js';
import { remoteBench, REMOTE_SERVICE_ENV } from './lib/remote.js';
import { fixed, int, progress, Report, verdict } from './lib/report.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const RESULTS_FILE = join(BENCH_DIR, 'results', 'latest.md');

/** A whole number of seconds from the environment, between 1 and 600. */
function seconds(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw ? Number(raw) : fallback;
  if (!Number.isFinite(value) || value < 1 || value > 600) {
    console.error(`${name} must be a number of seconds between 1 and 600 (got ${JSON.stringify(raw)})`);
    process.exit(2);
  }
  return Math.round(value);
}

const DURATION_S = seconds('BENCH_DURATION_S', 20);
const LOGIN_DURATION_S = seconds('BENCH_LOGIN_DURATION_S', 10);
const SECTION_NAMES = ['platform', 'auth', 'login', 'remote'] as const;
type Section = (typeof SECTION_NAMES)[number];
/** Which sections run: platform (1 and 2), auth (3), login (4), remote (5); all by default. */
const SECTIONS = (() => {
  const raw = process.env.BENCH_SECTIONS?.trim();
  const names = raw ? raw.split(',').map((name) => name.trim()).filter(Boolean) : [...SECTION_NAMES];
  const unknown = names.filter((name) => !(SECTION_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0 || names.length === 0) {
    console.error(`BENCH_SECTIONS must list some of ${SECTION_NAMES.join(', ')}, comma-separated (got ${JSON.stringify(raw)})`);
    process.exit(2);
  }
  return new Set(names as Section[]);
})();
const CONNECTIONS = 50;
const WARMUP_S = 2;
const IDLE_S = 5;
const TARGETS = { ratioPct: 35, p99Ms: 25, rssMb: 90 };

const report = new Report();

// ------------------------------------------------------------ stopping ---
// Everything started registers its undo step with lib/lifecycle.ts, which
// runs them in reverse order, once, on success, failure, Ctrl-C or the watchdog.
function abort(reason: string, code: number): void {
  // Ctrl-C under pnpm delivers SIGINT and then SIGTERM within milliseconds: every
  // signal after the first is only noted, and cleanup itself is bounded instead.
  if (lifecycle.interrupted) {
    progress(`${reason}: already stopping`);
    return;
  }
  lifecycle.interrupted = true;
  progress(`${reason}: stopping the load, the servers and the platform`);
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

// The whole run is bounded: every measured run with its warm-up and a margin,
// each platform's start and stop, the idle wait, with room to spare.
const WATCHDOG_S =
  (SECTIONS.has('platform') ? 2 * (DURATION_S + WARMUP_S + 40) + IDLE_S + 150 : 0) +
  (SECTIONS.has('auth') || SECTIONS.has('login') ? 150 : 0) +
  (SECTIONS.has('auth') ? 4 * (DURATION_S + WARMUP_S + 40) : 0) +
  (SECTIONS.has('login') ? LOGIN_DURATION_S + WARMUP_S + 40 + 120 : 0) +
  // Start, fleet, 1,000 jobs, baselines, 2,000 submissions and their drain, 200 MB stream: each step has its own bound.
  (SECTIONS.has('remote') ? 1200 : 0) +
  150;
setTimeout(() => abort(`watchdog: the benchmark did not finish within ${WATCHDOG_S} s`, 1), WATCHDOG_S * 1000).unref();

// ---------------------------------------------------------------- helpers ---
function rssTable(stack: Stack): Map<ServiceName, { rss?: number; hwm?: number }> {
  const result = new Map<ServiceName, { rss?: number; hwm?: number }>();
  for (const [name, service] of stack.services) {
    const pid = service.pid;
    result.set(name, pid === undefined ? {} : { rss: mb(statusKb(pid, 'VmRSS')), hwm: mb(statusKb(pid, 'VmHWM')) });
  }
  return result;
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

const loadavg = () => os.loadavg().map((v) => v.toFixed(2)).join(' / ');

interface Platform {
  stack: Stack;
  dataDir: string;
  identityMetricsPort: number;
  /** Seconds from launch until every service reported healthy. */
  startS: number;
  /** CPU per process group: every service, nats-server, PostgreSQL (all processes), redis, then `extra`, then this process. */
  cpuGroups: (extra?: Map<string, number[]>) => Map<string, number[]>;
  /** Stops it and removes its data directory (also done by the cleanup; runs once). */
  stop: () => Promise<void>;
  /** Copies the services' and nats-server's logs into bench/results/ before the data directory goes; returns where. */
  keepLogs: (why: string) => string;
}

/** Starts a platform (all services, or `services`) on free ports in a throw-away directory. */
async function launchPlatform(label: string, serviceEnv: Partial<Record<ServiceName, Record<string, string>>>, services?: readonly ServiceName[]): Promise<Platform> {
  const dataDir = mkdtempSync(join(os.tmpdir(), 'rh-bench-'));
  const removeDir = onCleanup(`remove ${dataDir}`, () => rmSync(dataDir, { recursive: true, force: true }));
  const identityMetricsPort = await freePort();
  const env = { ...serviceEnv, identity: { ...serviceEnv.identity, METRICS_PORT: String(identityMetricsPort) } };

  progress(`starting ${label} in ${dataDir}`);
  const startedAt = performance.now();
  const starting = startStack({
    dataDir,
    ports: { gateway: await freePort(), metricsBase: 0 },
    env: { LOG_LEVEL: 'warn' },
    serviceEnv: env,
    ...(services ? { services } : {}),
  });
  const stopStack = onCleanup(`stop ${label}`, async () => {
    await (await starting.catch(() => undefined))?.stop();
    // Whatever a failed start left behind: the servers' own pid files.
    for (const pidFile of ['nats/nats.pid', 'postgres/pgdata/postmaster.pid', 'redis/redis.pid']) {
      const pid = readPid(join(dataDir, pidFile));
      if (pid !== undefined && isAlive(pid) && ownsDataDir(pid, dataDir)) await stopPid(pid, 15_000, pidFile.startsWith('postgres') ? 'SIGINT' : 'SIGTERM');
    }
  });
  const stack = await starting;
  await stack.waitHealthy(60_000);
  const startS = (performance.now() - startedAt) / 1000;
  progress(`${label} healthy after ${startS.toFixed(1)} s at ${stack.gatewayUrl}`);

  const infraPids = {
    nats: readPid(join(dataDir, 'nats', 'nats.pid')),
    postgres: readPid(join(dataDir, 'postgres', 'pgdata', 'postmaster.pid')),
    redis: readPid(join(dataDir, 'redis', 'redis.pid')),
  };
  const cpuGroups = (extra?: Map<string, number[]>) => {
    const groups = new Map<string, number[]>();
    for (const [name, service] of stack.services) if (service.pid !== undefined) groups.set(name, [service.pid]);
    if (infraPids.nats) groups.set('nats-server', [infraPids.nats]);
    if (infraPids.postgres) groups.set('postgres (all processes)', processTree(infraPids.postgres));
    if (infraPids.redis) groups.set('redis', [infraPids.redis]);
    for (const [name, pids] of extra ?? []) groups.set(name, pids);
    groups.set('bench process (autocannon)', [process.pid]);
    return groups;
  };
  const stop = async () => {
    progress(`stopping ${label}`);
    await stopStack();
    await removeDir();
  };
  const keepLogs = (why: string) => {
    const to = join(dirname(RESULTS_FILE), `logs-${new Date().toISOString().replace(/[:.]/g, '-')}-${why}`);
    cpSync(join(dataDir, 'logs'), to, { recursive: true });
    const natsLog = join(dataDir, 'nats', 'nats.log');
    if (existsSync(natsLog)) cpSync(natsLog, join(to, 'nats.log'));
    return to;
  };
  return { stack, dataDir, identityMetricsPort, startS, cpuGroups, stop, keepLogs };
}

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
    ['measured duration per target', `${DURATION_S} s after ${WARMUP_S} s warm-up, ${CONNECTIONS} connections (sections 1 and 3)`],
    ['login benchmark', `${LOGIN_DURATION_S} s after ${WARMUP_S} s warm-up, ${LOGIN_CONNECTIONS} connections (section 4)`],
    ['sections run', SECTIONS.size === SECTION_NAMES.length ? 'all' : [...SECTIONS].join(', ')],
  ], ['l', 'l']);

  const limits = await rateLimitOverrides();
  if (SECTIONS.has('platform')) await platformSections(limits);
  if (SECTIONS.has('auth') || SECTIONS.has('login')) {
    checkInterrupted();
    // The login limits raised (or the limiter off): section 4 measures argon2, not 429s.
    const loginLimits = loginRateLimits(limits);
    const serviceEnv = { ...limits.env, gateway: { ...limits.env.gateway, ...loginLimits.gatewayEnv } };
    const platform = await launchPlatform('the identity + gateway platform', serviceEnv, ['identity', 'gateway']);
    const ctx: SectionContext = {
      report,
      stack: platform.stack,
      benchDir: BENCH_DIR,
      durationS: DURATION_S,
      warmupS: WARMUP_S,
      cpuGroups: platform.cpuGroups,
      loadavg,
    };
    if (SECTIONS.has('auth')) await tokenVerificationBench(ctx);
    checkInterrupted();
    if (SECTIONS.has('login')) {
      await loginBench({ ...ctx, loginDurationS: LOGIN_DURATION_S, identityMetricsPort: platform.identityMetricsPort, limitNotes: loginLimits.notes });
    }
    await platform.stop();
  }
  if (SECTIONS.has('remote')) {
    checkInterrupted();
    const serviceEnv = { ...limits.env, scheduler: { ...limits.env.scheduler, ...REMOTE_SERVICE_ENV.scheduler } };
    const platform = await launchPlatform('the platform for remote execution', serviceEnv);
    await remoteBench({ report, stack: platform.stack, cpuGroups: platform.cpuGroups, keepLogs: platform.keepLogs });
    await platform.stop();
  }
}

/** Sections 1 and 2, on the whole platform. */
async function platformSections(limits: RateLimitOverrides): Promise<void> {
  const launched = await launchPlatform('the platform', limits.env);
  const { stack, identityMetricsPort, startS } = launched;
  const rssAfterStart = rssTable(stack);

  // A user of its own, and the JSON the bare server must return.
  const account = { full_name: 'Bench User', email: 'bench-user@runnerhub.local', password: 'bench-password-1234' };
  await expectOk('POST /auth/register', http('POST', `${stack.gatewayUrl}/auth/register`, { body: account }));
  const login = JSON.parse((await expectOk('POST /auth/login', http('POST', `${stack.gatewayUrl}/auth/login`, { body: { email: account.email, password: account.password } }))).text) as { access_token: string };
  const token = login.access_token;
  const me = await expectOk('GET /common/me', http('GET', `${stack.gatewayUrl}/common/me`, { token }));
  const meBody = JSON.parse(me.text) as unknown;
  const limitHeaders = rateLimitHeaders(me.headers);

  const { child: bare, reply: { port: barePort }, stop: stopBare } = await forkServer<{ port: number }>(join(BENCH_DIR, 'bare-server.mjs'), 'bare server', { body: meBody });
  const bareUrl = `http://127.0.0.1:${barePort}/common/me`;
  const bareCheck = await expectOk('GET /common/me on the bare server', http('GET', bareUrl));
  if (bareCheck.text !== JSON.stringify(meBody)) throw new Error(`the bare server answers ${bareCheck.text}, the platform ${me.text}`);
  const bareRssAfterStart = bare.pid === undefined ? undefined : mb(statusKb(bare.pid, 'VmRSS'));
  progress(`bare fastify server (pid ${bare.pid}) at ${bareUrl}; both answer ${me.text.length} bytes`);

  // CPU per process group, to see where the time goes.
  const cpu = new CpuMeter(() => launched.cpuGroups(new Map(bare.pid ? [['bare fastify server', [bare.pid]]] : [])));

  const measure = async (label: string, url: string, headers?: Record<string, string>) => {
    progress(`${label}: warm-up ${WARMUP_S} s`);
    await runLoad({ url, headers, connections: CONNECTIONS, durationS: WARMUP_S });
    checkInterrupted();
    progress(`${label}: measuring ${DURATION_S} s with ${CONNECTIONS} connections`);
    const gatewayBefore = await scrapeOrNothing(`${stack.gatewayUrl}/metrics`, progress);
    const identityBefore = await scrapeOrNothing(`http://127.0.0.1:${identityMetricsPort}/metrics`, progress);
    cpu.start();
    const result = await runLoad({ url, headers, connections: CONNECTIONS, durationS: DURATION_S });
    const cpuPct = cpu.stop();
    const gatewayAfter = await scrapeOrNothing(`${stack.gatewayUrl}/metrics`, progress);
    const identityAfter = await scrapeOrNothing(`http://127.0.0.1:${identityMetricsPort}/metrics`, progress);
    checkInterrupted();
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

  await stopBare();
  await launched.stop();
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  if (!lifecycle.interrupted) {
    progress(`benchmark failed: ${(error as Error).stack ?? String(error)}`);
    report.add('', `**The benchmark failed:** ${(error as Error).message}`, '');
  }
} finally {
  if (!lifecycle.interrupted) {
    progress('cleaning up');
    await cleanup();
  }
}
if (!lifecycle.interrupted) {
  report.write(RESULTS_FILE);
  progress(`written to ${RESULTS_FILE}`);
  process.exit(failed ? 1 : 0);
}
