import { randomUUID } from 'node:crypto';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { Client } from 'ssh2';
import { BusError, createClient, implement, type Bus, type BusLogger, type Registration } from '@runnerhub/bus';
import { executorV1, inventoryV1 } from '@runnerhub/contracts';
import type { InventoryCredentials } from '../adapters/inventory.js';
import { closedWithExit, connectSsh } from '../adapters/ssh-connect.js';
import type { HostBreakers } from '../domain/breaker.js';
import type { HostKeyVerifier } from '../domain/host-keys.js';
import { isSshError } from '../domain/ssh-errors.js';
import { serverOf, type SshTarget } from '../domain/target.js';

const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_TIMEOUT_MS = 60_000;
/** NewRemora's documented test command. */
export const TEST_COMMAND = "echo 'test'";
/** Uptime, load, memory and disk of / in one round trip, from /proc and df (Linux). */
const FIGURES_COMMAND = `${TEST_COMMAND} && cat /proc/uptime /proc/loadavg && grep -E '^(MemTotal|MemAvailable):' /proc/meminfo && df -P / | tail -n 1`;
const MAX_OUTPUT = 16_384;

export interface ConnectivityOptions {
  bus: Bus;
  logger: BusLogger;
  breakers: HostBreakers;
  credentials: InventoryCredentials;
  /** The pool's verifier: trust on first use through inventory, a changed key refused. */
  verifyHostKey: HostKeyVerifier;
  connectTimeoutMs: number;
}

type Response = MessageInitShape<typeof executorV1.CheckConnectivityResponseSchema>;
type Figures = MessageInitShape<typeof executorV1.HostFiguresSchema>;

class CheckFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * executor.v1.connectivity.check: one fresh SSH connection to a server of
 * the caller's organisation (see connectivity.proto for why not a pooled
 * one), through the host's breaker, a tiny command, a verdict recorded in
 * inventory. Failures to reach or log in are answers (success false with a
 * code), not bus errors; an unknown server or a caller without access is.
 */
export function connectivityHandlers(options: ConnectivityOptions): Registration {
  const servers = createClient(options.bus, inventoryV1.Servers);
  return implement(executorV1.Connectivity, {
    async check(request) {
      const ref = request.serverUid
        ? { case: 'uid' as const, value: request.serverUid }
        : request.serverNumber
          ? { case: 'number' as const, value: request.serverNumber }
          : undefined;
      if (!ref) throw BusError.validation('server_uid or server_number is required', 'server_uid');
      // Authorises the caller in the organisation; another organisation's server is not found.
      const { server } = await servers.get({ caller: request.caller, organizationRef: request.organizationRef, server: { ref } });
      if (!server) throw BusError.notFound('server');
      const timeoutMs = Math.min(request.timeoutMs || DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS);
      const command = request.withFigures ? FIGURES_COMMAND : TEST_COMMAND;
      const base: Response = { serverUid: server.uid, serverNumber: server.number, serverName: server.name, testCommand: TEST_COMMAND };
      const started = performance.now();
      let fingerprint = '';
      let answer: Response;
      try {
        if (server.nodeType !== 'Remote' || !server.hostname) throw new CheckFailure('NOT_SSH', 'the server is not a Remote (SSH) server with a hostname');
        const dispatch = create(executorV1.JobDispatchSchema, { jobId: `check-${randomUUID()}`, organizationUid: server.organizationUid, target: { serverId: server.uid } });
        let target: SshTarget;
        try {
          target = await options.credentials.targetFor(dispatch);
        } catch (error) {
          if (error instanceof BusError && error.code === 'VALIDATION_ERROR') throw new CheckFailure('NO_CREDENTIALS', error.message);
          throw error;
        }
        const verifyHostKey: HostKeyVerifier = (name, offered, t) => {
          fingerprint = offered;
          return options.verifyHostKey(name, offered, t);
        };
        const output = await probe(target, command, { ...options, verifyHostKey }, timeoutMs);
        const latencyMs = Math.round(performance.now() - started);
        const [first = '', ...rest] = output.split('\n');
        answer = { ...base, success: true, latencyMs, testOutput: first.trim(), ...(request.withFigures ? { figures: parseFigures(rest) } : {}) };
      } catch (error) {
        if (error instanceof BusError && !(error instanceof CheckFailure)) throw error;
        const code = error instanceof CheckFailure ? error.code : isSshError(error) ? error.kind : 'CHECK_FAILED';
        answer = { ...base, success: false, latencyMs: Math.round(performance.now() - started), errorCode: code, errorMessage: (error as Error).message };
      }
      const checkedAt = new Date();
      answer = { ...answer, hostKeyFingerprint: fingerprint, checkedAt: timestampFromDate(checkedAt) };
      try {
        await servers.recordHealth({ organizationUid: server.organizationUid, serverUid: server.uid, healthy: answer.success ?? false, checkedAt: timestampFromDate(checkedAt) });
      } catch (error) {
        options.logger.warn({ err: error, serverUid: server.uid }, 'the health verdict could not be recorded');
      }
      return answer;
    },
  });
}

/** Connects (through the host's breaker), runs `command` and closes; the whole within timeoutMs. */
async function probe(target: SshTarget, command: string, options: ConnectivityOptions, timeoutMs: number): Promise<string> {
  const server = serverOf(target);
  let client: Client | undefined;
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const work = options.breakers.run(server, async () => {
    client = await connectSsh(target, {
      verifyHostKey: options.verifyHostKey,
      connectTimeoutMs: Math.min(options.connectTimeoutMs, timeoutMs),
      handshakeTimeoutMs: timeoutMs,
      keepaliveIntervalMs: 0,
      keepaliveCountMax: 3,
    });
    if (timedOut) client.end();
    // A failing command is an answer from a live host: it must not count against the breaker.
    return run(client, command, server).catch((error: unknown) => error as CheckFailure);
  }).then((result) => {
    if (result instanceof CheckFailure) throw result;
    return result;
  });
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new CheckFailure('CHECK_TIMEOUT', `${server} did not answer the check within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  work.catch(() => {});
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
    (client as Client | undefined)?.end();
  }
}

function run(client: Client, command: string, server: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.exec(command, (error, channel) => {
      if (error) return reject(new CheckFailure('CHANNEL_OPEN_FAILED', `${server} refused a session: ${error.message}`));
      let stdout = '';
      let stderr = '';
      channel.on('data', (data: Buffer) => void (stdout.length < MAX_OUTPUT && (stdout += data.toString('utf8'))));
      channel.stderr.on('data', (data: Buffer) => void (stderr.length < MAX_OUTPUT && (stderr += data.toString('utf8'))));
      void closedWithExit(channel).then((exit) => {
        if (exit?.code === 0) resolve(stdout);
        else reject(new CheckFailure('COMMAND_FAILED', `the check command failed on ${server} (exit code ${exit?.code ?? 'none'}): ${stderr.trim().slice(0, 500)}`));
      });
    });
  });
}

/** /proc/uptime, /proc/loadavg, MemTotal/MemAvailable and `df -P /` lines, in that order. */
export function parseFigures(lines: string[]): Figures {
  const figures: Figures = {};
  const [uptime, loadavg] = lines;
  const seconds = Number(uptime?.split(/\s+/)[0]);
  if (Number.isFinite(seconds)) figures.uptimeSeconds = seconds;
  const load = Number(loadavg?.split(/\s+/)[0]);
  if (Number.isFinite(load)) figures.load1min = load;
  const kb = (name: string) => Number(/(\d+)\s*kB/.exec(lines.find((line) => line.startsWith(`${name}:`)) ?? '')?.[1]);
  const total = kb('MemTotal');
  const available = kb('MemAvailable');
  if (total > 0 && Number.isFinite(available)) figures.memoryUsage = round1(((total - available) / total) * 100);
  const df = lines.filter((line) => line.trim()).at(-1) ?? '';
  const percent = /\s(\d+)%\s/.exec(`${df} `)?.[1];
  if (percent !== undefined) figures.diskUsage = Number(percent);
  return figures;
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}
