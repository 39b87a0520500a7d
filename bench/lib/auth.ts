/**
 * Section 3: what verifying an access token adds to a request on the gateway.
 *
 * auth-server.mjs is a bare fastify app with the gateway's own authPlugin
 * (built code from services/gateway/dist/plugins), fetching identity's public
 * key over the real NATS; /open and /closed answer the same JSON and differ
 * only in `onRequest: app.authenticate`. Both get the same request, bearer
 * header included, from autocannon in the bench process.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Stack } from '@runnerhub/stack';
import { serviceSettings } from './config.js';
import { expectOk, forkServer, http } from './http.js';
import { checkInterrupted } from './lifecycle.js';
import { runLoad, type LoadResult } from './load.js';
import { CpuMeter, OTHERS } from './proc.js';
import { fixed, int, progress, verdict, type Report } from './report.js';

export interface SectionContext {
  report: Report;
  stack: Stack;
  benchDir: string;
  durationS: number;
  warmupS: number;
  /** The platform's processes by name, with `extra` groups before the bench process. */
  cpuGroups: (extra?: Map<string, number[]>) => Map<string, number[]>;
  loadavg: () => string;
}

const CONNECTIONS = 50;
const TARGET_MS = 0.2;
/** Below this share of a core, the app was not what limited throughput. */
const SATURATED_PCT = 80;
const APP = 'auth app (fastify + gateway authPlugin)';
const BENCH = 'bench process (autocannon)';

interface Run {
  route: string;
  result: LoadResult;
  cpuPct: Map<string, number>;
  appPct: number;
  /** CPU of the app per 2xx response, in ms. */
  appCpuMs: number;
}

interface Variant {
  label: string;
  tokenCache: number | false;
  open: Run;
  closed: Run;
}

export async function tokenVerificationBench(ctx: SectionContext): Promise<void> {
  const { report, stack } = ctx;
  const { TOKEN_ISSUER, TOKEN_AUDIENCE } = await serviceSettings('gateway', ['TOKEN_ISSUER', 'TOKEN_AUDIENCE']);

  // A user of its own and a real token, through the real gateway.
  const account = { full_name: 'Bench Auth', email: 'bench-auth@runnerhub.local', password: 'bench-password-1234' };
  await expectOk('POST /auth/register', http('POST', `${stack.gatewayUrl}/auth/register`, { body: account }));
  const login = await expectOk('POST /auth/login', http('POST', `${stack.gatewayUrl}/auth/login`, { body: { email: account.email, password: account.password } }));
  const token = (JSON.parse(login.text) as { access_token: string }).access_token;
  const headers = { authorization: `Bearer ${token}` };

  const variants: Variant[] = [];
  const notes: string[] = [];
  let bodyBytes = 0;
  for (const disableTokenCache of [false, true]) {
    checkInterrupted();
    const label = disableTokenCache ? "fast-jwt's token cache off" : "fast-jwt's token cache on (the gateway's setting)";
    let server: Awaited<ReturnType<typeof forkServer<{ port: number; tokenCache: number | false }>>>;
    try {
      server = await forkServer(join(ctx.benchDir, 'auth-server.mjs'), `auth app (${label})`, {
        natsUrl: stack.nats.url,
        issuer: TOKEN_ISSUER!.value,
        audience: TOKEN_AUDIENCE!.value,
        disableTokenCache,
      });
    } catch (error) {
      if (!disableTokenCache) throw error;
      notes.push(`The run without fast-jwt's token cache could not be made: ${(error as Error).message}`);
      continue;
    }
    const base = `http://127.0.0.1:${server.reply.port}`;
    if (disableTokenCache && server.reply.tokenCache !== false) {
      notes.push(`The run without fast-jwt's token cache was skipped: the plugin's cache setting could not be changed (it is ${String(server.reply.tokenCache)}).`);
      await server.stop();
      continue;
    }

    // Same answer on both routes; only /closed insists on a valid token.
    const open = await expectOk('GET /open', http('GET', `${base}/open`, { token }));
    const closed = await expectOk('GET /closed with the token', http('GET', `${base}/closed`, { token }));
    if (open.text !== closed.text) throw new Error(`/open answers ${open.text} but /closed ${closed.text}`);
    const anonymous = await http('GET', `${base}/closed`);
    if (anonymous.status !== 401) throw new Error(`GET /closed without a token answered ${anonymous.status}, expected 401: the route does not authenticate`);
    const forged = await http('GET', `${base}/closed`, { token: forgeSignature(token) });
    if (forged.status !== 401) throw new Error(`GET /closed with a forged signature answered ${forged.status}, expected 401`);
    bodyBytes = open.text.length;
    progress(`auth app (pid ${server.child.pid}, token cache ${String(server.reply.tokenCache)}) at ${base}`);

    const openRun = await measure(ctx, server.child, `${label}: /open`, `${base}/open`, headers);
    const closedRun = await measure(ctx, server.child, `${label}: /closed`, `${base}/closed`, headers);
    variants.push({ label, tokenCache: server.reply.tokenCache, open: { ...openRun, route: '/open' }, closed: { ...closedRun, route: '/closed' } });
    await server.stop();
  }

  // ------------------------------------------------------------ report ---
  report.add('## 3. Token verification cost on the gateway', '');
  report.add(
    `A bare fastify app in its own process (\`bench/auth-server.mjs\`) registers the gateway's own \`authPlugin\` (built code from \`services/gateway/dist/plugins/\`), ` +
      `whose \`VerificationKeys\` fetched identity's Ed25519 public key over NATS from the platform started for sections 3–4 (identity and gateway). ` +
      `\`GET /open\` and \`GET /closed\` return the same ${bodyBytes}-byte JSON; only /closed has \`onRequest: app.authenticate\`. ` +
      `Both get the same request, with a real access token from \`POST /auth/login\` in its Authorization header. ` +
      `${CONNECTIONS} connections, ${ctx.durationS} s per route after a ${ctx.warmupS} s warm-up, autocannon in the bench process. Latency in ms, from every 2xx response.`,
    '',
  );
  const row = (v: Variant, r: Run) => [
    v.label, r.route, int(r.result.rps), fixed(r.result.meanMs, 3), fixed(r.result.p50Ms, 2), fixed(r.result.p99Ms, 2), int(r.result.requests),
    String(r.result.non2xx), `${r.result.errors}/${r.result.timeouts}`, fixed(r.appPct), fixed(r.appCpuMs * 1000, 1),
  ];
  report.table(
    ['app', 'route', 'req/s (2xx)', 'mean', 'p50', 'p99', 'requests', 'non-2xx', 'errors/timeouts', 'app CPU % of a core', 'app CPU µs / request'],
    variants.flatMap((v) => [row(v, v.open), row(v, v.closed)]),
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );

  // One Node.js process runs JavaScript on one core: cores = 1.
  const cost = (v: Variant) => (1 / v.closed.result.rps - 1 / v.open.result.rps) * 1 * 1000;
  report.table(
    ['added by authentication', 'per request: (1/rps closed − 1/rps open) × 1 core', 'app CPU per request, closed − open', 'mean latency, closed − open', 'target', 'result'],
    variants.map((v) => [
      v.label, `${fixed(cost(v), 4)} ms`, `${fixed(v.closed.appCpuMs - v.open.appCpuMs, 4)} ms`, `${fixed(v.closed.result.meanMs - v.open.result.meanMs, 3)} ms`,
      `< ${TARGET_MS} ms`, verdict(cost(v) < TARGET_MS),
    ]),
    ['l', 'r', 'r', 'r', 'l', 'l'],
  );
  report.add(
    `The per-request cost is what the throughput says: the app is one Node.js process, so its JavaScript runs on one core, and a request that takes 1/rps of that core longer is what authentication adds. ` +
      `"App CPU per request" checks it from the app's own CPU time (/proc). ` +
      `The mean-latency difference is larger: with ${CONNECTIONS} connections each request also waits behind the others, so it grows about ${CONNECTIONS}× the per-request cost (Little's law).`,
    '',
  );
  const runs = variants.flatMap((v) => [v.open, v.closed].map((r) => ({ name: `${v.tokenCache === false ? 'cache off' : 'cache on'} ${r.route}`, r })));
  const unsaturated = runs.filter((x) => !(x.r.appPct >= SATURATED_PCT));
  if (unsaturated.length > 0) {
    notes.push(
      `The app used less than ${SATURATED_PCT} % of a core in ${unsaturated.map((x) => `${x.name} (${fixed(x.r.appPct)} %)`).join(', ')}: ` +
        'something else (the load generator, other work on the machine) limited throughput there, so the app-CPU-per-request column is the sounder figure for that pair.',
    );
  }
  for (const { name, r } of runs) {
    if (r.result.non2xx > 0) notes.push(`${name}: ${r.result.non2xx} non-2xx responses (${Object.entries(r.result.statusCodes).filter(([c]) => !c.startsWith('2')).map(([c, n]) => `${n}×${c}`).join(', ')}).`);
  }
  const cpuNames = [...new Set(variants.flatMap((v) => [...v.open.cpuPct.keys(), ...v.closed.cpuPct.keys()]))];
  const total = (m: Map<string, number>) => [...m.values()].reduce((s, value) => s + value, 0);
  report.add('CPU during each measured run (% of one core):', '');
  report.table(['process', ...runs.map((x) => x.name)], [
    ...cpuNames.map((name) => [name, ...runs.map((x) => fixed(x.r.cpuPct.get(name)))]),
    ['**machine total**', ...runs.map((x) => `**${fixed(total(x.r.cpuPct))}**`)],
  ]);
  const disturbance = Math.max(0, ...runs.map((x) => x.r.cpuPct.get(OTHERS) ?? 0));
  if (disturbance > 20) notes.push(`**Warning:** other work on this machine used up to ${fixed(disturbance)} % of a core during a measured run; the numbers above are disturbed by it.`);
  if (notes.length > 0) report.add(...notes.map((note) => `- ${note}`), '');
}

/** The same token with one character of its signature changed. */
function forgeSignature(token: string): string {
  const [header, payload, signature = ''] = token.split('.');
  const i = Math.floor(signature.length / 2);
  return `${header}.${payload}.${signature.slice(0, i)}${signature[i] === 'A' ? 'B' : 'A'}${signature.slice(i + 1)}`;
}

async function measure(ctx: SectionContext, app: ChildProcess, label: string, url: string, headers: Record<string, string>): Promise<Omit<Run, 'route'>> {
  progress(`${label}: warm-up ${ctx.warmupS} s`);
  await runLoad({ url, headers, connections: CONNECTIONS, durationS: ctx.warmupS });
  checkInterrupted();
  progress(`${label}: measuring ${ctx.durationS} s with ${CONNECTIONS} connections`);
  const cpu = new CpuMeter(() => ctx.cpuGroups(new Map([[APP, app.pid === undefined ? [] : [app.pid]]])));
  cpu.start();
  const result = await runLoad({ url, headers, connections: CONNECTIONS, durationS: ctx.durationS });
  const cpuPct = cpu.stop();
  checkInterrupted();
  const appPct = cpuPct.get(APP) ?? Number.NaN;
  progress(`${label}: ${int(result.rps)} req/s, mean ${fixed(result.meanMs, 3)} ms, app ${fixed(appPct)} % of a core, bench ${fixed(cpuPct.get(BENCH))} %, load average ${ctx.loadavg()}`);
  return { result, cpuPct, appPct, appCpuMs: (appPct / 100 / result.rps) * 1000 };
}
