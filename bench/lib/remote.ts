/**
 * Section 5: remote execution. The same 10 sshd servers (127.0.0.11–20, a
 * dedicated /bin/sh account) run `echo` through the whole platform and through
 * the tools a user would pick instead (OpenSSH per command, OpenSSH with
 * ControlMaster, Ansible `raw`), 10 at a time; then job submission alone and
 * output streaming of one 200 MB job.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import autocannon from 'autocannon';
import { startSshdFleet, type SshFleet } from '@runnerhub/infra';
import { ADMIN, type Stack } from '@runnerhub/stack';
import { checkInterrupted, onCleanup } from './lifecycle.js';
import { CpuMeter, machineBusySeconds, mb, statusKb } from './proc.js';
import { expectOk, http } from './http.js';
import { busiest, meanMsBetween, scrapeOrNothing } from './prom.js';
import { fixed, int, progress, type Report, verdict } from './report.js';

export const REMOTE_TARGETS = { jobsPerS: 300, acceptedPerS: 2_000, streamMBps: 50, rssGrowthMb: 100 };
export const REMOTE_SSH_USER = 'rh-bench';
const SSH_PASSWORD = 'bench-ssh-password-1234';
const FLEET = 10;
const PARALLELISM = 10;
const E2E_JOBS = 1_000;
/**
 * Runs of the end-to-end measurement, of ControlMaster and of the submission
 * measurement: one run of the same thing varies by ±15 % on this machine, so
 * each result is the median of three (every run is reported).
 */
const RUNS = 3;
const SUBMIT_JOBS = 3_000;
/** Submissions before the measured ones, as the other sections warm up for 2 s: the rate climbs over the first ≈ 1,500 (JIT, batch sizes). */
const SUBMIT_WARMUP = 2_000;
const SUBMIT_CONNECTIONS = 50;
/** Clients submitting the 1,000 jobs at once (execution is limited to PARALLELISM by the scheduler). */
const E2E_SUBMITTERS = 50;
const STREAM_BYTES = 200_000_000;
/** Commands per host for each baseline: 10 for the slow ones (100 in all), 100 with ControlMaster. */
const PER_HOST = { openssh: 10, controlMaster: 100, ansibleRounds: 5 };

/** The environment the platform needs for section 5: the 10-wide parallelism of the baselines. */
export const REMOTE_SERVICE_ENV = {
  scheduler: { SCHEDULER_MAX_CONCURRENT: String(PARALLELISM), SCHEDULER_PER_SERVER_CONCURRENCY: '1' },
} as const;

export interface RemoteContext {
  report: Report;
  stack: Stack;
  cpuGroups: (extra?: Map<string, number[]>) => Map<string, number[]>;
  /** Keeps the platform's logs past the run (see Platform.keepLogs); returns where. */
  keepLogs: (why: string) => string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function median(values: number[]): number {
  return percentile(values, 50);
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Runs `total` tasks with `width` workers; worker i gets index i, i+width, … */
async function pool(width: number, total: number, task: (index: number, worker: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async (_, worker) => {
    while (next < total) {
      const index = next++;
      checkInterrupted();
      await task(index, worker);
    }
  }));
}

/** One child process, bounded (30 s), resolving with its exit code and output. */
function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: error.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface Baseline {
  name: string;
  commands: number;
  failures: number;
  seconds: number;
  perS?: number;
  note?: string;
}

// --------------------------------------------------------------- baselines ---
async function opensshPerCommand(fleet: SshFleet, keyFile: string): Promise<Baseline> {
  const opts = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-i', keyFile];
  let failures = 0;
  const total = FLEET * PER_HOST.openssh;
  const started = performance.now();
  await pool(PARALLELISM, total, async (index) => {
    const server = fleet.servers[index % FLEET]!;
    const r = await run('ssh', [...opts, '-p', String(server.port), `${server.user}@${server.host}`, 'echo hi']);
    if (r.code !== 0 || r.stdout.trim() !== 'hi') failures++;
  });
  const seconds = (performance.now() - started) / 1000;
  return { name: 'OpenSSH, one client process per command (key auth)', commands: total, failures, seconds, perS: (total - failures) / seconds };
}

async function opensshControlMaster(fleet: SshFleet, keyFile: string, dir: string): Promise<Baseline> {
  const opts = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-i', keyFile];
  const masters: ChildProcess[] = [];
  const stopMasters = onCleanup('stop the ControlMaster connections', async () => {
    for (const master of masters) if (master.exitCode === null && master.signalCode === null) master.kill('SIGTERM');
    await sleep(200);
  });
  try {
    // One persistent master per host, started (and logged in) before the clock starts.
    for (const [i, server] of fleet.servers.entries()) {
      const socket = join(dir, `cm-${i}`);
      masters.push(spawn('ssh', [...opts, '-M', '-S', socket, '-N', '-p', String(server.port), `${server.user}@${server.host}`], { stdio: 'ignore' }));
    }
    for (const [i, server] of fleet.servers.entries()) {
      const socket = join(dir, `cm-${i}`);
      const deadline = Date.now() + 15_000;
      while ((await run('ssh', ['-S', socket, '-O', 'check', `${server.user}@${server.host}`])).code !== 0) {
        if (Date.now() > deadline) throw new Error(`the ControlMaster for ${server.host} did not come up`);
        await sleep(100);
      }
    }
    let failures = 0;
    const total = FLEET * PER_HOST.controlMaster;
    const rounds: { seconds: number; perS: number }[] = [];
    for (let round = 0; round < RUNS; round++) {
      let failed = 0;
      const started = performance.now();
      // One worker per host: each master carries one command at a time, as with the other tools.
      await pool(PARALLELISM, total, async (index) => {
        const i = index % FLEET;
        const server = fleet.servers[i]!;
        const r = await run('ssh', [...opts, '-o', 'ControlMaster=no', '-S', join(dir, `cm-${i}`), '-p', String(server.port), `${server.user}@${server.host}`, 'echo hi']);
        if (r.code !== 0 || r.stdout.trim() !== 'hi') failed++;
      });
      const seconds = (performance.now() - started) / 1000;
      failures += failed;
      rounds.push({ seconds, perS: (total - failed) / seconds });
    }
    const middle = [...rounds].sort((a, b) => a.perS - b.perS)[Math.floor(RUNS / 2)]!;
    return {
      name: 'OpenSSH with ControlMaster (one persistent master per host)',
      commands: total,
      failures,
      seconds: middle.seconds,
      perS: middle.perS,
      note: `median of ${RUNS} runs of ${total}: ${rounds.map((r) => fixed(r.perS, 1)).join(' / ')} commands/s`,
    };
  } finally {
    await stopMasters();
  }
}

async function ansibleRaw(fleet: SshFleet, keyFile: string, dir: string): Promise<Baseline> {
  const name = 'Ansible ad-hoc, `raw` module, 10 forks';
  const version = spawnSync('ansible', ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (version.status !== 0) {
    return { name, commands: 0, failures: 0, seconds: 0, note: `not measured: ansible is not installed here (\`apt-get install -y ansible\`); toolchain.md's earlier measurement on this machine: 8 commands/s` };
  }
  const inventory = join(dir, 'inventory.ini');
  writeFileSync(inventory, `[fleet]\n${fleet.servers.map((s, i) => `h${i} ansible_host=${s.host} ansible_port=${s.port} ansible_user=${s.user}`).join('\n')}\n`);
  const env = {
    ...process.env,
    ANSIBLE_HOST_KEY_CHECKING: 'False',
    ANSIBLE_SSH_ARGS: '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes',
    ANSIBLE_LOCAL_TEMP: join(dir, 'ansible-tmp'),
    ANSIBLE_HOME: join(dir, 'ansible-home'),
    ANSIBLE_NOCOLOR: '1',
  };
  const args = ['fleet', '-i', inventory, '-m', 'raw', '-a', 'echo hi', '-f', String(PARALLELISM), '--private-key', keyFile, '-o'];
  // One untimed round first: Ansible's start-up (Python imports) warms the page cache.
  await run('ansible', args, { env, timeoutMs: 120_000 });
  let failures = 0;
  let commands = 0;
  const started = performance.now();
  for (let round = 0; round < PER_HOST.ansibleRounds; round++) {
    checkInterrupted();
    const r = await run('ansible', args, { env, timeoutMs: 120_000 });
    const ok = (r.stdout.match(/ \| CHANGED \| rc=0/g) ?? []).length;
    commands += FLEET;
    failures += FLEET - ok;
  }
  const seconds = (performance.now() - started) / 1000;
  return { name, commands, failures, seconds, perS: (commands - failures) / seconds, note: `${PER_HOST.ansibleRounds} runs of \`ansible fleet -m raw -a 'echo hi' -f 10\` (${version.stdout.split('\n')[0]?.trim()}), SSH's own ControlPersist left at Ansible's default` };
}

// ----------------------------------------------------------- the platform ---
interface JobRecord {
  id: string;
  status: string;
  created_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  reason?: string | null;
  error?: string | null;
}

async function listJobs(base: string, token: string, status: string, page: number, limit: number): Promise<{ jobs: JobRecord[]; total: number }> {
  const r = await expectOk(`GET /api/v1/jobs?status=${status}`, http('GET', `${base}/api/v1/jobs?status=${status}&limit=${limit}&page=${page}`, { token }));
  const body = JSON.parse(r.text) as { data: { jobs: JobRecord[]; pagination: { total: number } } };
  return { jobs: body.data.jobs, total: body.data.pagination.total };
}

const ENDED = ['completed', 'failed', 'timed_out', 'canceled'];

async function countEnded(base: string, token: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const status of ENDED) counts[status] = (await listJobs(base, token, status, 1, 1)).total;
  return counts;
}

/** Waits (bounded) until `expected` jobs have ended; returns when the last one was seen and the counts. */
async function waitEnded(base: string, token: string, expected: number, timeoutMs: number, label: string): Promise<{ counts: Record<string, number>; seenAt: number }> {
  const deadline = performance.now() + timeoutMs;
  let lastLog = 0;
  for (;;) {
    checkInterrupted();
    const counts = await countEnded(base, token);
    const ended = Object.values(counts).reduce((s, v) => s + v, 0);
    if (ended >= expected) return { counts, seenAt: performance.now() };
    if (performance.now() > deadline) throw new Error(`${label}: only ${ended} of ${expected} jobs ended within ${timeoutMs / 1000} s (${JSON.stringify(counts)})`);
    if (performance.now() - lastLog > 5_000) {
      progress(`${label}: ${ended}/${expected} ended`);
      lastLog = performance.now();
    }
    // Each poll is four list requests through the platform, on the two cores it runs on; the rates
    // come from the job records, so polling more often would only cost the platform CPU.
    await sleep(500);
  }
}

async function allJobs(base: string, token: string, status: string, total: number): Promise<JobRecord[]> {
  const jobs: JobRecord[] = [];
  for (let page = 1; jobs.length < total && page <= 1000; page++) {
    const got = await listJobs(base, token, status, page, 100);
    jobs.push(...got.jobs);
    if (got.jobs.length === 0) break;
  }
  return jobs;
}

/**
 * Follows one job's SSE stream until `event: complete` (bounded), counting the
 * bytes on the wire and, from every `output` event's JSON, the job output bytes
 * actually delivered (stdout and stderr).
 */
/**
 * Follows an SSE stream and adds up the decoded output. node:http, not
 * fetch: the client shares the two cores with the platform, and fetch's web
 * streams took ≈ 54 % of a core for the 300 MB on the wire. Events are cut
 * out of each chunk by index, the buffer trimmed once per chunk.
 */
function followStream(url: string, token: string, timeoutMs: number): Promise<{ bytes: number; payload: number; events: number; firstByteAt: number; endAt: number; completed: boolean; completeData?: string }> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    let payload = 0;
    let events = 0;
    let firstByteAt = 0;
    let buffer = '';
    const request = httpGet(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, timeout: timeoutMs }, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        reject(new Error(`GET stream: HTTP ${response.statusCode}`));
        return;
      }
      const decoder = new StringDecoder('utf8');
      const finish = (completeData?: string) => {
        request.destroy();
        resolve({ bytes, payload, events, firstByteAt, endAt: performance.now(), completed: completeData !== undefined, completeData });
      };
      response.on('data', (chunk: Buffer) => {
        if (!firstByteAt) firstByteAt = performance.now();
        bytes += chunk.length;
        buffer += decoder.write(chunk);
        let start = 0;
        let end: number;
        while ((end = buffer.indexOf('\n\n', start)) >= 0) {
          const block = buffer.slice(start, end);
          start = end + 2;
          const dataAt = block.indexOf('data: ');
          if (dataAt < 0) continue;
          events++;
          const type = block.startsWith('event: ') ? block.slice(7, block.indexOf('\n')) : (/^event: (.*)$/m.exec(block)?.[1] ?? '');
          const data = block.slice(dataAt + 6);
          if (type === 'output') payload += Buffer.byteLength((JSON.parse(data) as { content: string }).content);
          if (type === 'complete') return finish(data);
        }
        buffer = buffer.slice(start);
      });
      response.on('end', () => finish());
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET stream: nothing received for ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}

/**
 * POSTs every body once (in order, `connections` at a time) with autocannon:
 * a lean client, so that the bench takes little of the two cores the
 * platform runs on (fetch cost ≈ 1.4 ms of CPU per request here). autocannon
 * ends an `amount` run on its one-second tick, so the time is taken from the
 * bench's own clock, first request to last response.
 */
async function postMany(url: string, token: string, bodies: string[], connections: number): Promise<{ result: autocannon.Result; startedAt: number; lastResponseAt: number }> {
  let next = 0;
  let lastResponseAt = 0;
  const startedAt = performance.now();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({
      url,
      method: 'POST',
      connections,
      amount: bodies.length,
      timeout: 30,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      requests: [{ setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length]! }) }],
    }, (error: Error | null, done: autocannon.Result) => (error ? reject(error) : resolve(done)));
    const guard = setTimeout(() => instance.stop(), 120_000);
    instance.on('done', () => clearTimeout(guard));
    instance.on('response', () => (lastResponseAt = performance.now()));
  });
  return { result, startedAt, lastResponseAt };
}

// ------------------------------------------------------------------ main ---
export async function remoteBench(ctx: RemoteContext): Promise<void> {
  const { report, stack } = ctx;
  const base = stack.gatewayUrl;
  const dir = mkdtempSync(join(os.tmpdir(), 'rh-bench-ssh-'));
  // sshd reads authorized_keys as the dedicated account: the directory must be searchable.
  chmodSync(dir, 0o755);
  const removeDir = onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  const keyFile = join(dir, 'id_ed25519');
  const keygen = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'rh-bench', '-f', keyFile]);
  if (keygen.status !== 0) throw new Error(`ssh-keygen failed: ${keygen.stderr}`);
  const publicKey = readFileSync(`${keyFile}.pub`, 'utf8').trim();

  progress(`starting ${FLEET} sshd servers on 127.0.0.11–${10 + FLEET} (user ${REMOTE_SSH_USER})`);
  let fleet: SshFleet | undefined;
  const stopFleet = onCleanup('stop the sshd fleet', async () => void (await fleet?.stop()));
  fleet = await startSshdFleet(FLEET, { dataDir: join(dir, 'fleet'), user: REMOTE_SSH_USER, password: SSH_PASSWORD, authorizedKeys: [publicKey], logLevel: 'ERROR' });

  const login = await expectOk('POST /api/auth/login', http('POST', `${base}/api/auth/login`, { body: { username: ADMIN.username, password: ADMIN.password } }));
  const token = (JSON.parse(login.text) as { token: string }).token;
  const serverIds: string[] = [];
  for (const [i, server] of fleet.servers.entries()) {
    const created = await expectOk('POST /api/v1/servers', http('POST', `${base}/api/v1/servers`, {
      token,
      body: { name: `bench-${i}`, hostname: server.host, port: server.port, user: server.user, auth_type: 'password', password: SSH_PASSWORD },
    }));
    serverIds.push((JSON.parse(created.text) as { data: { id: string } }).data.id);
  }
  const submit = (index: number, command = 'echo', args = `hi ${index}`) =>
    expectOk('POST /api/v1/jobs', http('POST', `${base}/api/v1/jobs`, { token, body: { command, args, server_id: serverIds[index % FLEET], timeout: 600 } }));

  // Warm-up: one job per server, so that the executor's pooled connections exist (as the baselines' masters do).
  progress('platform: warm-up, one job per server');
  for (let i = 0; i < FLEET; i++) await submit(i);
  await waitEnded(base, token, FLEET, 60_000, 'warm-up');
  const warm = await countEnded(base, token);
  if ((warm.completed ?? 0) < FLEET) throw new Error(`warm-up jobs did not complete: ${JSON.stringify(warm)}; see the executor's log under the data directory`);

  // 1. 1,000 echo jobs through the whole platform, RUNS times, after one run that is not measured:
  // the first 1,000 jobs after a start ran at 160-240 jobs/s, the third run at 240-300 (V8 still
  // compiles the services' hot paths), as the submission section warms up for the same reason.
  const e2eBodies = Array.from({ length: E2E_JOBS }, (_, i) => JSON.stringify({ command: 'echo', args: `hi ${i}`, server_id: serverIds[i % FLEET], timeout: 600 }));
  progress(`platform: warm-up run, ${E2E_JOBS} echo jobs (not measured)`);
  const warmupStarted = performance.now();
  const warmupRun = await postMany(`${base}/api/v1/jobs`, token, e2eBodies, E2E_SUBMITTERS);
  let expectedEnded = FLEET + warmupRun.result['2xx'];
  await waitEnded(base, token, expectedEnded, 300_000, 'warm-up run');
  const e2eWarmupRate = warmupRun.result['2xx'] / ((performance.now() - warmupStarted) / 1000);
  const cpu = new CpuMeter(() => ctx.cpuGroups());
  const busyBefore = machineBusySeconds();
  cpu.start();
  const e2eRuns: { startWall: number; endWall: number; submitSeconds: number; refused: number }[] = [];
  let submitFailures = 0;
  for (let round = 1; round <= RUNS; round++) {
    checkInterrupted();
    progress(`platform, run ${round}/${RUNS}: ${E2E_JOBS} echo jobs, submitted ${E2E_SUBMITTERS} at a time`);
    const startWall = Date.now();
    const submitted = await postMany(`${base}/api/v1/jobs`, token, e2eBodies, E2E_SUBMITTERS);
    const refused = E2E_JOBS - submitted.result['2xx'];
    submitFailures += refused;
    expectedEnded += submitted.result['2xx'];
    await waitEnded(base, token, expectedEnded, 300_000, `platform run ${round}`);
    e2eRuns.push({ startWall, endWall: Date.now(), submitSeconds: (submitted.lastResponseAt - submitted.startedAt) / 1000, refused });
  }
  const e2eCpu = cpu.stop();
  const busyMsPerJob = ((machineBusySeconds() - busyBefore) * 1000) / (RUNS * E2E_JOBS);
  const counts = await countEnded(base, token);
  const completed = await allJobs(base, token, 'completed', counts.completed ?? 0);
  const measuredRuns = e2eRuns.map((r) => {
    const jobs = completed.filter((j) => j.created_at && Date.parse(j.created_at) >= r.startWall && Date.parse(j.created_at) < r.endWall);
    const lastFinish = Math.max(...jobs.map((j) => Date.parse(j.finished_at ?? j.started_at ?? '0')));
    const seconds = (lastFinish - r.startWall) / 1000;
    return { ...r, jobs, seconds, rate: jobs.length / seconds };
  });
  const e2e = [...measuredRuns].sort((a, b) => a.rate - b.rate)[Math.floor(RUNS / 2)]!;
  const e2eRate = e2e.rate;
  const measured = measuredRuns.flatMap((r) => r.jobs);
  const waits = measured.filter((j) => j.started_at).map((j) => Date.parse(j.started_at!) - Date.parse(j.created_at!));
  const runs = measured.filter((j) => j.started_at && j.finished_at).map((j) => Date.parse(j.finished_at!) - Date.parse(j.started_at!));
  const e2eFailed = RUNS * E2E_JOBS - measured.length;
  progress(`platform: runs at ${measuredRuns.map((r) => fixed(r.rate)).join(' / ')} jobs/s; ${measured.length} of ${RUNS * E2E_JOBS} completed; the machine busy ${fixed(busyMsPerJob, 1)} ms per job`);

  // 2. Baselines on the same servers.
  checkInterrupted();
  progress('baseline: OpenSSH per command');
  const baselines: Baseline[] = [];
  baselines.push(await opensshPerCommand(fleet, keyFile));
  progress(`  ${fixed(baselines.at(-1)!.perS)} commands/s`);
  progress('baseline: OpenSSH with ControlMaster');
  baselines.push(await opensshControlMaster(fleet, keyFile, dir));
  progress(`  ${fixed(baselines.at(-1)!.perS)} commands/s`);
  progress('baseline: Ansible raw');
  baselines.push(await ansibleRaw(fleet, keyFile, dir));
  progress(`  ${baselines.at(-1)!.perS === undefined ? baselines.at(-1)!.note : `${fixed(baselines.at(-1)!.perS)} commands/s`}`);
  const controlMaster = baselines[1]!.perS ?? Number.POSITIVE_INFINITY;

  // 3. Submission alone: 2,000 POSTs at concurrency 50, with the executor stopped so that running jobs do not share the two cores.
  checkInterrupted();
  const executor = stack.services.get('executor');
  progress('submission: stopping the executor (the jobs queue; it starts again afterwards and runs them)');
  await executor?.stop();
  const submitCpu = new CpuMeter(() => ctx.cpuGroups());
  const bodies = serverIds.map((id, i) => JSON.stringify({ command: 'echo', args: `submitted ${i}`, server_id: id, timeout: 600 }));
  progress(`submission: ${SUBMIT_WARMUP} POST /api/v1/jobs to warm up, then ${SUBMIT_JOBS} measured, ${SUBMIT_CONNECTIONS} connections`);
  const warmup = await postMany(`${base}/api/v1/jobs`, token, Array.from({ length: SUBMIT_WARMUP }, (_, i) => bodies[i % bodies.length]!), SUBMIT_CONNECTIONS);
  const warmupRate = warmup.result['2xx'] / ((warmup.lastResponseAt - warmup.startedAt) / 1000);
  const gatewayBefore = await scrapeOrNothing(`${base}/metrics`, progress);
  submitCpu.start();
  const submitRuns: { result: autocannon.Result; rate: number }[] = [];
  for (let round = 0; round < RUNS; round++) {
    const posted = await postMany(`${base}/api/v1/jobs`, token, Array.from({ length: SUBMIT_JOBS }, (_, i) => bodies[i % bodies.length]!), SUBMIT_CONNECTIONS);
    submitRuns.push({ result: posted.result, rate: posted.result['2xx'] / ((posted.lastResponseAt - posted.startedAt) / 1000) });
  }
  const submitPct = submitCpu.stop();
  const { result: ac, rate: acceptedRate } = [...submitRuns].sort((a, b) => a.rate - b.rate)[Math.floor(RUNS / 2)]!;
  const accepted = submitRuns.reduce((sum, r) => sum + r.result['2xx'], 0);
  const submitNon2xx = submitRuns.reduce((sum, r) => sum + r.result.non2xx, 0);
  const gatewayAfter = await scrapeOrNothing(`${base}/metrics`, progress);
  const submitRoute = busiest(gatewayBefore, gatewayAfter, 'runnerhub_http_request_duration_seconds', 'route', {}) ?? '/api/v1/jobs';
  const submitSubject = busiest(gatewayBefore, gatewayAfter, 'runnerhub_bus_request_duration_seconds', 'subject', { role: 'client' }) ?? '?';
  const submitHttpMs = meanMsBetween(gatewayBefore, gatewayAfter, 'runnerhub_http_request_duration_seconds', { route: submitRoute });
  const submitBusMs = meanMsBetween(gatewayBefore, gatewayAfter, 'runnerhub_bus_request_duration_seconds', { subject: submitSubject, role: 'client' });
  progress(`submission: runs at ${submitRuns.map((r) => int(r.rate)).join(' / ')} accepted/s; non-2xx ${submitNon2xx}`);
  executor?.start();
  await stack.waitHealthy(60_000);
  // Let them run before the streaming measurement (bounded).
  progress('waiting for the submitted jobs to run before the streaming test');
  const drained = await waitEnded(base, token, expectedEnded + warmup.result['2xx'] + accepted, 300_000, 'drain').then(() => true, (error: Error) => {
    progress(error.message);
    // A stall is rare and the data directory goes with the run: its logs are what explains it.
    progress(`the services' and nats-server's logs are kept in ${ctx.keepLogs('drain')}`);
    return false;
  });

  // 4. Output streaming: one job printing 200 MB, followed over SSE.
  checkInterrupted();
  const executorPid = stack.services.get('executor')?.pid;
  const rssBefore = executorPid ? mb(statusKb(executorPid, 'VmRSS')) : undefined;
  let rssPeak = rssBefore ?? 0;
  const sampler = setInterval(() => {
    const now = executorPid ? mb(statusKb(executorPid, 'VmRSS')) : undefined;
    if (now !== undefined) rssPeak = Math.max(rssPeak, now);
  }, 100);
  progress(`streaming: one job printing ${STREAM_BYTES / 1e6} MB, followed over SSE`);
  const streamCpu = new CpuMeter(() => ctx.cpuGroups());
  let stream: Awaited<ReturnType<typeof followStream>> | undefined;
  let streamError: string | undefined;
  let streamJob: JobRecord | undefined;
  const streamStart = performance.now();
  streamCpu.start();
  try {
    // A script job: a command job's args are split into words and quoted, so a pipe would not be one.
    const created = await expectOk('POST /api/v1/jobs/script (stream)', http('POST', `${base}/api/v1/jobs/script`, {
      token, body: { script: `yes | head -c ${STREAM_BYTES}\n`, shell: '/bin/sh', server_id: serverIds[0], timeout: 600 },
    }));
    const id = (JSON.parse(created.text) as { data: { id: string } }).data.id;
    stream = await followStream(`${base}/api/v1/jobs/${id}/stream`, token, 300_000);
    // The record without its output (GET /api/v1/jobs/:id would read all 200 MB back): the newest job in the list.
    const got = await expectOk('GET /api/v1/jobs (newest)', http('GET', `${base}/api/v1/jobs?limit=1&sort_by=created_at&sort_order=desc`, { token }));
    streamJob = (JSON.parse(got.text) as { data: { jobs: JobRecord[] } }).data.jobs.find((job) => job.id === id);
  } catch (error) {
    streamError = (error as Error).message;
  } finally {
    clearInterval(sampler);
  }
  const streamPct = streamCpu.stop();
  const rssAfter = executorPid ? mb(statusKb(executorPid, 'VmRSS')) : undefined;
  const streamSeconds = stream ? (stream.endAt - streamStart) / 1000 : Number.NaN;
  const streamMBps = stream ? stream.payload / 1e6 / streamSeconds : Number.NaN;
  const wireMBps = stream ? stream.bytes / 1e6 / streamSeconds : Number.NaN;
  const firstByteMBps = stream?.firstByteAt ? stream.payload / 1e6 / ((stream.endAt - stream.firstByteAt) / 1000) : Number.NaN;
  const growth = rssBefore === undefined ? Number.NaN : rssPeak - rssBefore;
  progress(`streaming: ${stream ? `${fixed(stream.payload / 1e6)} MB of output (${fixed(stream.bytes / 1e6)} MB on the wire) in ${fixed(streamSeconds, 2)} s = ${fixed(streamMBps)} MB/s, complete event: ${stream.completed}` : `failed: ${streamError}`}; executor RSS ${fixed(rssBefore)} → peak ${fixed(rssPeak)} → ${fixed(rssAfter)} MB`);

  // ------------------------------------------------------------ report ---
  report.add('## 5. Remote execution', '');
  report.add(`${FLEET} OpenSSH servers on 127.0.0.11–${10 + FLEET} (\`startSshdFleet\`, account \`${REMOTE_SSH_USER}\` with /bin/sh), ${PARALLELISM} commands in flight everywhere: the platform runs with SCHEDULER_MAX_CONCURRENT=${PARALLELISM} and SCHEDULER_PER_SERVER_CONCURRENCY=1 (password login, as registered through the API); the baselines use one worker per host with an Ed25519 key. Every command is \`echo\`.`, '');
  const top = (v: number) => fixed(v, 1);
  report.table(['how', 'commands', 'failed', 'seconds', 'commands/s', 'note'], [
    [`**RunnerHub**: POST /api/v1/jobs through the gateway → scheduler → JOBS → executor (ssh2) → completion`, `${RUNS} × ${E2E_JOBS}`, e2eFailed, fixed(e2e.seconds, 2), `**${top(e2eRate)}**`, `median of ${RUNS} runs (${measuredRuns.map((r) => fixed(r.rate, 1)).join(' / ')} jobs/s), each first submit → last finished_at, after a warm-up run of ${E2E_JOBS} not measured (${fixed(e2eWarmupRate, 1)} jobs/s, submit → last seen ended); ${E2E_SUBMITTERS} concurrent submitters, ${PARALLELISM} jobs running at once; submitting took ${e2eRuns.map((r) => fixed(r.submitSeconds, 1)).join(' / ')} s; ${submitFailures} submissions refused`],
    ...baselines.map((b) => [b.name, b.commands || '—', b.perS === undefined ? '—' : b.failures, b.perS === undefined ? '—' : fixed(b.seconds, 2), b.perS === undefined ? 'not measured' : top(b.perS), b.note ?? '']),
  ], ['l', 'r', 'r', 'r', 'r', 'l']);
  report.table([`platform job timing (ms, from the job records of all ${RUNS} runs)`, 'p50', 'p90', 'p99', 'max'], [
    ['accepted (created_at) → started (started_at)', fixed(percentile(waits, 50), 0), fixed(percentile(waits, 90), 0), fixed(percentile(waits, 99), 0), fixed(percentile(waits, 100), 0)],
    ['started → finished (the SSH exec)', fixed(percentile(runs, 50), 0), fixed(percentile(runs, 90), 0), fixed(percentile(runs, 99), 0), fixed(percentile(runs, 100), 0)],
  ], ['l', 'r', 'r', 'r', 'r']);
  report.table(['submission and streaming', 'value'], [
    [`accepted jobs/s (POST /api/v1/jobs, median of ${RUNS} runs of ${SUBMIT_JOBS} requests after ${SUBMIT_WARMUP} to warm up, ${SUBMIT_CONNECTIONS} connections, autocannon; executor stopped meanwhile, so nothing runs)`, int(acceptedRate)],
    ['… each run', submitRuns.map((r) => int(r.rate)).join(' / ')],
    [`… during the ${SUBMIT_WARMUP} warm-up requests (not counted; non-2xx)`, `${int(warmupRate)} (${warmup.result.non2xx})`],
    ['… latency p50 / p99 / max of the median run (ms, autocannon)', `${ac.latency.p50} / ${ac.latency.p99} / ${ac.latency.max}`],
    ['… non-2xx / errors / timeouts, all runs', submitRuns.map((r) => `${r.result.non2xx} / ${r.result.errors} / ${r.result.timeouts}`).join('; ')],
    [`… gateway's own mean time for ${submitRoute} / of which the bus call ${submitSubject} (ms, gateway histograms)`, `${fixed(submitHttpMs, 1)} / ${fixed(submitBusMs, 1)}`],
    ['… those jobs all ran (executor started again) before the streaming test', drained ? 'yes' : 'no (timed out waiting)'],
    [`streaming: job output reaching the SSE client (script \`yes \\| head -c ${STREAM_BYTES}\`), decoded from the output events`, stream ? `${fixed(stream.payload / 1e6, 3)} MB of ${fixed(STREAM_BYTES / 1e6, 3)} MB in ${int(stream.events)} events` : `failed: ${streamError}`],
    ['… bytes on the wire (SSE framing and JSON escaping of "\\n" included)', stream ? `${fixed(stream.bytes / 1e6)} MB (${fixed(wireMBps)} MB/s)` : 'n/a'],
    ['… time from submit to `complete` event / output MB/s from the first byte', `${fixed(streamSeconds, 2)} s / ${fixed(firstByteMBps)} MB/s`],
    ['… complete event received / job status', `${stream?.completed ?? false} / ${streamJob?.status ?? 'n/a'}${streamJob?.reason ? ` (${streamJob.reason}: ${streamJob.error ?? ''})` : ''}`],
    ['… job started → finished (job record)', streamJob?.started_at && streamJob.finished_at ? `${fixed((Date.parse(streamJob.finished_at) - Date.parse(streamJob.started_at)) / 1000, 2)} s` : 'n/a'],
    ['… executor VmRSS before / peak (100 ms samples) / after', `${fixed(rssBefore)} / ${fixed(rssPeak)} / ${fixed(rssAfter)} MB`],
  ], ['l', 'r']);
  report.table(['target', 'goal', 'measured', 'result'], [
    ['jobs/s end to end (1,000 echo jobs, 10 servers)', `≥ ${REMOTE_TARGETS.jobsPerS}/s`, `${top(e2eRate)}/s`, verdict(e2eRate >= REMOTE_TARGETS.jobsPerS && e2eFailed === 0)],
    ['… ahead of OpenSSH ControlMaster', `> ${top(controlMaster)}/s`, `${top(e2eRate)}/s`, verdict(e2eRate > controlMaster)],
    ['accepted jobs/s (submission alone)', `≥ ${int(REMOTE_TARGETS.acceptedPerS)}/s`, `${int(acceptedRate)}/s`, verdict(acceptedRate >= REMOTE_TARGETS.acceptedPerS && submitNon2xx === 0)],
    ['output streaming to an SSE client (job output, submit → complete)', `≥ ${REMOTE_TARGETS.streamMBps} MB/s`, `${fixed(streamMBps)} MB/s`, verdict(streamMBps >= REMOTE_TARGETS.streamMBps && !!stream?.completed && stream.payload === STREAM_BYTES)],
    ['executor RSS growth while streaming (peak − before)', `< ${REMOTE_TARGETS.rssGrowthMb} MB`, `${fixed(growth)} MB`, verdict(growth < REMOTE_TARGETS.rssGrowthMb)],
  ], ['l', 'l', 'r', 'l']);
  const cpuRows = [...e2eCpu.keys()].map((name) => [name, fixed(e2eCpu.get(name)), fixed(submitPct.get(name)), fixed(streamPct.get(name))]);
  report.add(`CPU (% of one core; the machine has ${os.availableParallelism() * 100} %) during the ${RUNS} runs of ${E2E_JOBS} jobs (the machine was busy ${fixed(busyMsPerJob, 1)} ms of CPU per job), the ${RUNS} submission runs and the streaming run:`, '');
  report.table(['process', `${E2E_JOBS} jobs ×${RUNS}`, 'submission', 'streaming'], cpuRows);

  await stopFleet();
  await removeDir();
}
