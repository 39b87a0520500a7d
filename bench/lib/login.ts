/**
 * Section 4: logins per second through the real platform, where every login
 * verifies an argon2id hash at identity's configured cost, and that hash's
 * own cost measured in-process with the same library (@node-rs/argon2).
 */
import os from 'node:os';
import { hash, verify } from '@node-rs/argon2';
import { serviceSettings, type Setting } from './config.js';
import type { SectionContext } from './auth.js';
import { expectOk, http } from './http.js';
import { checkInterrupted } from './lifecycle.js';
import { runLoad, type LoadResult } from './load.js';
import { CpuMeter, OTHERS } from './proc.js';
import { busiest, meanMsBetween, scrapeOrNothing } from './prom.js';
import { rateLimitHeaders, type RateLimitOverrides } from './ratelimits.js';
import { fixed, int, progress } from './report.js';

export const LOGIN_CONNECTIONS = 10;
/** In-process argon2 samples (each of hash and verify), one at a time. */
const ARGON2_SAMPLES = 20;
/** More non-2xx than this share of all responses makes the figures meaningless. */
const MAX_NON2XX_SHARE = 0.01;
const PASSWORD = 'bench-password-1234';
// @node-rs/argon2 exports Algorithm as a const enum (erased by the TypeScript loader); 2 is Argon2id, as identity uses.
const ARGON2ID = 2;
const ARGON2_SETTINGS = ['ARGON2_MEMORY_KIB', 'ARGON2_TIME_COST', 'ARGON2_PARALLELISM'] as const;

/**
 * What the login benchmark needs from the gateway's rate limits: the login
 * limits raised (rateLimitOverrides does that for every count it finds), or
 * else the gateway's limits switched off, so that it measures argon2, not 429s.
 */
export function loginRateLimits(limits: RateLimitOverrides): { gatewayEnv: Record<string, string>; notes: string[] } {
  const declared = limits.declared.gateway ?? {};
  const login = Object.keys(declared).filter((name) => /LOGIN/.test(name));
  if (login.length === 0) return { gatewayEnv: {}, notes: ['the gateway declares no login rate limit, so none was raised'] };
  const raised = login.filter((name) => limits.env.gateway?.[name] !== undefined);
  const missed = login.filter((name) => !raised.includes(name));
  if (missed.length === 0) {
    return {
      gatewayEnv: {},
      notes: [
        `the login limits were raised, ${raised.map((name) => `${name}=${limits.env.gateway![name]} (default ${declared[name]})`).join(', ')}; ` +
          'the limiter stays on, so its Redis round trip is part of every login',
      ],
    };
  }
  const onOff = Object.keys(declared).find((name) => /_ENABLED?$/.test(name));
  if (onOff) {
    return { gatewayEnv: { [onOff]: 'false' }, notes: [`${missed.join(', ')} could not be raised, so ${onOff}=false turns the gateway's rate limits off for this run`] };
  }
  return { gatewayEnv: {}, notes: [`**${missed.join(', ')} could be neither raised nor turned off: expect 429 answers**`] };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** libuv's default thread pool, where @node-rs/argon2 runs its work (identity does not change its size). */
const LIBUV_POOL = 4;

interface Argon2Timings {
  hash: number[];
  verify: number[];
  encoded: string;
  /** Verifies per second with `concurrency` of them at a time: what the machine's cores can do together. */
  parallelPerS: number;
  concurrency: number;
}

async function timeArgon2(cost: { memoryCost: number; timeCost: number; parallelism: number }): Promise<Argon2Timings> {
  const hashes: number[] = [];
  const verifies: number[] = [];
  let encoded = '';
  for (let i = 0; i < ARGON2_SAMPLES; i++) {
    checkInterrupted();
    let started = performance.now();
    encoded = await hash(PASSWORD, { algorithm: ARGON2ID, ...cost });
    hashes.push(performance.now() - started);
    started = performance.now();
    if (!(await verify(encoded, PASSWORD))) throw new Error('argon2 did not verify its own hash');
    verifies.push(performance.now() - started);
  }
  // The same verify, one per core at a time (as identity's thread pool runs them under load).
  const concurrency = Math.min(os.availableParallelism(), LIBUV_POOL);
  const started = performance.now();
  for (let round = 0; round < ARGON2_SAMPLES; round++) {
    checkInterrupted();
    await Promise.all(Array.from({ length: concurrency }, () => verify(encoded, PASSWORD)));
  }
  const parallelPerS = (ARGON2_SAMPLES * concurrency) / ((performance.now() - started) / 1000);
  return { hash: hashes, verify: verifies, encoded, parallelPerS, concurrency };
}

export async function loginBench(ctx: SectionContext & { loginDurationS: number; identityMetricsPort: number; limitNotes: string[] }): Promise<void> {
  const { report, stack } = ctx;
  const settings = await serviceSettings('identity', [...ARGON2_SETTINGS]);
  const cost = {
    memoryCost: Number(settings.ARGON2_MEMORY_KIB!.value),
    timeCost: Number(settings.ARGON2_TIME_COST!.value),
    parallelism: Number(settings.ARGON2_PARALLELISM!.value),
  };

  // One account per connection, registered through the gateway (each registration hashes once).
  const accounts = Array.from({ length: LOGIN_CONNECTIONS }, (_, i) => ({ username: `bench-login-${String(i).padStart(2, '0')}@runnerhub.local`, password: PASSWORD }));
  for (const account of accounts) {
    await expectOk(`POST /auth/register ${account.username}`, http('POST', `${stack.gatewayUrl}/auth/register`, { body: { full_name: 'Bench Login', email: account.username, password: account.password } }));
  }
  const url = `${stack.gatewayUrl}/api/auth/login`;
  const first = await expectOk('POST /api/auth/login', http('POST', url, { body: accounts[0] }));
  if (!(JSON.parse(first.text) as { token?: string }).token) throw new Error(`POST /api/auth/login answered without a token: ${first.text.slice(0, 300)}`);
  const limitHeaders = rateLimitHeaders(first.headers);

  const load = { url, method: 'POST' as const, headers: { 'content-type': 'application/json' }, bodies: accounts.map((a) => JSON.stringify(a)), connections: LOGIN_CONNECTIONS };
  progress(`logins: warm-up ${ctx.warmupS} s`);
  const warm = await runLoad({ ...load, durationS: ctx.warmupS });
  // autocannon walks away from the logins still in flight: let them finish outside the measured window.
  await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, Math.max(500, (warm.p99Ms || 0) * 1.5))));
  checkInterrupted();
  progress(`logins: measuring ${ctx.loginDurationS} s with ${LOGIN_CONNECTIONS} connections`);
  const identityMetrics = `http://127.0.0.1:${ctx.identityMetricsPort}/metrics`;
  const gatewayBefore = await scrapeOrNothing(`${stack.gatewayUrl}/metrics`, progress);
  const identityBefore = await scrapeOrNothing(identityMetrics, progress);
  const cpu = new CpuMeter(() => ctx.cpuGroups());
  cpu.start();
  const result = await runLoad({ ...load, durationS: ctx.loginDurationS });
  const cpuPct = cpu.stop();
  const gatewayAfter = await scrapeOrNothing(`${stack.gatewayUrl}/metrics`, progress);
  const identityAfter = await scrapeOrNothing(identityMetrics, progress);
  checkInterrupted();
  progress(`logins: ${fixed(result.rps)} logins/s, p50 ${fixed(result.p50Ms)} ms, p99 ${fixed(result.p99Ms)} ms, non-2xx ${result.non2xx}, load average ${ctx.loadavg()}`);

  progress(`argon2id in-process at m=${cost.memoryCost} KiB, t=${cost.timeCost}, p=${cost.parallelism}: ${ARGON2_SAMPLES} × hash + verify, then ${ARGON2_SAMPLES} rounds of parallel verifies`);
  const argon2Cpu = new CpuMeter(() => ctx.cpuGroups());
  argon2Cpu.start();
  const argon2 = await timeArgon2(cost);
  const argon2Others = argon2Cpu.stop().get(OTHERS) ?? 0;
  const expectedPrefix = `$argon2id$v=19$m=${cost.memoryCost},t=${cost.timeCost},p=${cost.parallelism}$`;
  if (!argon2.encoded.startsWith(expectedPrefix)) throw new Error(`argon2 produced ${argon2.encoded.slice(0, 40)}…, expected ${expectedPrefix}…`);

  // ------------------------------------------------------------ report ---
  report.add('## 4. Logins per second (argon2id)', '');
  report.add(
    `\`POST /api/auth/login\` through the real platform (gateway → NATS → identity: find the user in PostgreSQL, verify the argon2id hash, create the session, sign the tokens), ` +
      `${LOGIN_CONNECTIONS} connections, each logging in as its own account, ${ctx.loginDurationS} s after a ${ctx.warmupS} s warm-up, autocannon in the bench process. Latency in ms, from every 2xx response.`,
    '',
  );
  const source = (s: Setting) => (s.fromEnv ? 'from this environment' : 'identity default');
  report.table(['argon2id cost (identity)', 'value', 'source'], [
    ['ARGON2_MEMORY_KIB', `${cost.memoryCost} KiB (${fixed(cost.memoryCost / 1024)} MiB)`, source(settings.ARGON2_MEMORY_KIB!)],
    ['ARGON2_TIME_COST', `${cost.timeCost} iterations`, source(settings.ARGON2_TIME_COST!)],
    ['ARGON2_PARALLELISM', `${cost.parallelism} lane${cost.parallelism === 1 ? '' : 's'}`, source(settings.ARGON2_PARALLELISM!)],
  ], ['l', 'l', 'l']);

  const row = (r: LoadResult) => [
    'POST /api/auth/login', fixed(r.rps), fixed(r.p50Ms, 1), fixed(r.p90Ms, 1), fixed(r.p99Ms, 1), fixed(r.maxMs, 1), fixed(r.meanMs, 1), int(r.requests), String(r.non2xx), `${r.errors}/${r.timeouts}`,
  ];
  report.table(['route', 'logins/s (2xx)', 'p50', 'p90', 'p99', 'max', 'mean', 'requests', 'non-2xx', 'errors/timeouts'], [row(result)]);

  report.add(`Rate limits for this run: ${ctx.limitNotes.join('; ')}.`);
  report.add(limitHeaders.length > 0 ? `The login response carried: ${limitHeaders.join(', ')}.` : 'No rate-limit headers on the login response.', '');

  // Where the time goes.
  const routeName = 'runnerhub_http_request_duration_seconds';
  const busName = 'runnerhub_bus_request_duration_seconds';
  const route = busiest(gatewayBefore, gatewayAfter, routeName, 'route', {}) ?? '/api/auth/login';
  const subject = busiest(gatewayBefore, gatewayAfter, busName, 'subject', { role: 'client' }) ?? 'identity.v1.auth.login';
  const httpMean = meanMsBetween(gatewayBefore, gatewayAfter, routeName, { route });
  const clientMean = meanMsBetween(gatewayBefore, gatewayAfter, busName, { subject, role: 'client' });
  const serverMean = meanMsBetween(identityBefore, identityAfter, busName, { subject, role: 'server' });
  const spread = (values: number[]) => `${fixed(Math.min(...values), 1)}–${fixed(Math.max(...values), 1)}`;
  const verifyMs = median(argon2.verify);
  report.add('### Where a login\'s time goes', '');
  report.table(['segment', 'mean ms', 'source'], [
    ['seen by the client (autocannon)', fixed(result.meanMs, 1), 'autocannon'],
    [`… gateway handling ${route} (rate-limit check in Redis, bus call)`, fixed(httpMean, 1), `gateway ${routeName}`],
    [`…… bus round trip ${subject}`, fixed(clientMean, 1), 'gateway bus client'],
    ['……… identity handler: user lookup, argon2id verify, session, tokens', fixed(serverMean, 1), `identity ${busName}`],
    ['argon2id verify alone, one at a time on the idle platform (below)', fixed(verifyMs, 1), '@node-rs/argon2 in the bench process'],
  ], ['l', 'r', 'l']);

  const cores = os.availableParallelism();
  const identityPct = cpuPct.get('identity');
  const identityCpuPerLogin = identityPct === undefined ? undefined : (identityPct / 100 / result.rps) * 1000;
  report.table(['argon2id alone, in the bench process at the same cost', 'value'], [
    [`verify, one at a time: median of ${ARGON2_SAMPLES} (range ${spread(argon2.verify)})`, `${fixed(verifyMs, 1)} ms`],
    [`hash, one at a time: median of ${ARGON2_SAMPLES} (range ${spread(argon2.hash)}), what a registration or password change costs`, `${fixed(median(argon2.hash), 1)} ms`],
    [`verifies per second, ${argon2.concurrency} at a time (${ARGON2_SAMPLES} rounds): the most logins/s this machine's argon2 allows`, `${fixed(argon2.parallelPerS, 1)} /s`],
    [`${cores} × 1000 / verify median: the same if ${cores} cores scaled perfectly`, `${fixed((cores * 1000) / verifyMs, 1)} /s`],
  ], ['l', 'r']);
  if (argon2Others > 20) report.add(`**Warning:** other work on this machine used ${fixed(argon2Others)} % of a core while argon2 was timed; these figures are disturbed by it.`, '');
  report.add(
    `The platform did ${fixed(result.rps, 1)} logins/s, ${fixed((result.rps / argon2.parallelPerS) * 100)} % of what argon2 alone manages on this machine (${fixed(argon2.parallelPerS, 1)}/s), ` +
      `with identity using ${fixed(identityCpuPerLogin, 1)} ms of CPU per login against ${fixed(verifyMs, 1)} ms for one verify on the idle machine. ` +
      `With ${LOGIN_CONNECTIONS} connections the mean latency is mostly waiting for a core (Little's law: ${LOGIN_CONNECTIONS} / ${fixed(result.rps, 1)} logins/s ≈ ${fixed((LOGIN_CONNECTIONS / result.rps) * 1000, 0)} ms).`,
    '',
  );
  const total = (m: Map<string, number>) => [...m.values()].reduce((s, v) => s + v, 0);
  report.add(`CPU during the measured login run (% of one core; the machine has ${cores * 100} %):`, '');
  report.table(['process', 'login run'], [...[...cpuPct].map(([name, pct]) => [name, fixed(pct)]), ['**machine total**', `**${fixed(total(cpuPct))}**`]]);
  if ((cpuPct.get(OTHERS) ?? 0) > 20) report.add(`**Warning:** other work on this machine used ${fixed(cpuPct.get(OTHERS))} % of a core during the login run; the numbers above are disturbed by it.`, '');

  // A login benchmark that measured refusals must not pass for one.
  const refused = result.statusCodes['429'] ?? 0;
  const allowed = Math.floor(result.requests * MAX_NON2XX_SHARE);
  if (refused > 0 || result.non2xx > allowed) {
    const codes = Object.entries(result.statusCodes).filter(([code]) => !code.startsWith('2')).map(([code, n]) => `${n}×${code}`).join(', ');
    report.add(`**The login benchmark is invalid:** ${result.non2xx} of ${result.requests} responses were not 2xx (${codes}).`, '');
    throw new Error(`login benchmark: ${result.non2xx} of ${result.requests} responses were not 2xx (${codes})${refused > 0 ? ': a rate limit was not raised' : ''}`);
  }
  if (result.non2xx > 0) report.add(`Non-2xx responses: ${result.non2xx} (under ${MAX_NON2XX_SHARE * 100} % of all, tolerated).`, '');
}
