import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientChannel } from 'ssh2';
import { closedWithExit, type ChannelExit } from '../adapters/ssh-connect.js';
import type { SshPool } from '../adapters/ssh-pool.js';
import type { HostBreakers } from './breaker.js';
import { OutputPump, PgidMarker, type OutputSink } from './output.js';
import { buildProgram, killProgram, launchOf, REMOTE_COMMAND, type Work } from './remote-program.js';
import { SshError } from './ssh-errors.js';
import { serverOf, type SshTarget } from './target.js';

export interface RunRequest {
  target: SshTarget;
  work: Work;
  env?: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
  onOutput: OutputSink;
}

export type RunStatus = 'completed' | 'failed' | 'timed_out' | 'canceled';

/** What was done to the remote process group after a timeout, a cancel or a lost connection. */
export interface Cleanup {
  pgid: number | undefined;
  signal: 'TERM' | 'KILL' | undefined;
  /** No process of the group is left on the server. */
  verified: boolean;
}

export interface RunResult {
  status: RunStatus;
  exitCode: number | null;
  signal: string | null;
  /** Empty when completed; otherwise says why, in words. */
  reason: string;
  startedAt: Date;
  endedAt: Date;
  cleanup?: Cleanup;
}

export interface RunnerOptions {
  /** TERM, then KILL after this long. */
  killGraceMs?: number;
  /** How long to wait for the channel to close once the group is gone before closing it ourselves. */
  closeGraceMs?: number;
}

type StopReason = 'timed_out' | 'canceled' | 'output_failed';

/**
 * Runs commands and scripts over pooled SSH channels. Failures before the
 * command starts throw an SshError (see ssh-errors.ts for the bus codes);
 * once started, every outcome is a RunResult.
 */
export class CommandRunner {
  private readonly killGraceMs: number;
  private readonly closeGraceMs: number;

  constructor(
    private readonly pool: SshPool,
    private readonly breakers: HostBreakers,
    options: RunnerOptions = {},
  ) {
    this.killGraceMs = options.killGraceMs ?? 2_000;
    this.closeGraceMs = options.closeGraceMs ?? 2_000;
  }

  async run(request: RunRequest): Promise<RunResult> {
    if (!Number.isFinite(request.timeoutMs) || request.timeoutMs <= 0) {
      throw new SshError('INVALID_REQUEST', `timeout must be a positive number of milliseconds, not ${request.timeoutMs}`, 'timeout');
    }
    const program = buildProgram(request.work, request.env);
    if (request.signal?.aborted) return canceledBeforeStart();
    let stdin = program.text;
    const channel = await this.breakers.run(serverOf(request.target), () =>
      this.pool.exec(request.target, (loginShell) => {
        const launch = launchOf(program, loginShell);
        stdin = launch.stdin;
        return launch;
      }),
    );
    // Nothing was written yet: the shell reads end-of-file and exits. (A command
    // given as the command line already runs: it is stopped as any cancel.)
    if (request.signal?.aborted && stdin !== '') {
      channel.close();
      return canceledBeforeStart();
    }
    return this.supervise(channel, program.marker, stdin, request);
  }

  private async supervise(channel: ClientChannel, markerText: string, stdin: string, request: RunRequest): Promise<RunResult> {
    const startedAt = new Date();
    const marker = new PgidMarker(markerText);
    let announcePgid: () => void = () => {};
    const pgidKnown = new Promise<void>((resolve) => (announcePgid = resolve));
    let exit: ChannelExit | undefined;
    let closed = false;
    let stopReason: StopReason | undefined;
    let cleanup: Promise<Cleanup> | undefined;

    const channelClosed = closedWithExit(channel).then((ended) => {
      closed = true;
      exit = ended;
    });
    // A job ends when its output does: a shell that exited while its
    // background processes still hold the channel open is not done yet.
    const stop = (why: StopReason) => {
      if (stopReason !== undefined || closed) return;
      stopReason = why;
      cleanup = this.terminate(request.target, channel, () => marker.pgid, pgidKnown, channelClosed);
    };
    const pump = new OutputPump(request.onOutput, [channel, channel.stderr], () => stop('output_failed'));
    channel.on('data', (data: Buffer) => {
      pump.push('stdout', marker.take(data));
      if (marker.pgid !== undefined) announcePgid();
    });
    channel.stderr.on('data', (data: Buffer) => pump.push('stderr', data));
    // A fast command's whole life can arrive with the exec reply, and ssh2 ends a closed channel
    // itself: ending it again would only build an error (with its stack trace) for nobody. Without
    // input, the end of it went with the exec request (and an empty chunk would be written after it).
    if (!channel.writableEnded) channel.end(stdin || undefined);

    const timer = setTimeout(() => stop('timed_out'), request.timeoutMs);
    const onAbort = () => stop('canceled');
    request.signal?.addEventListener('abort', onAbort, { once: true });
    if (request.signal?.aborted) onAbort();
    await channelClosed;
    clearTimeout(timer);
    request.signal?.removeEventListener('abort', onAbort);
    pump.push('stdout', marker.flush());

    // The channel closed without an exit status: the connection dropped while the command ran.
    if (exit === undefined && stopReason === undefined && marker.pgid !== undefined) {
      cleanup = this.killGroup(request.target, marker.pgid);
    }
    const cleaned = await cleanup;
    let outputError: unknown;
    await pump.drained().catch((error: unknown) => (outputError = error));
    const outcome = describe(stopReason, exit, request, outputError);
    return { ...outcome, exitCode: exit?.code ?? null, signal: exit?.signal ?? null, startedAt, endedAt: new Date(), ...(cleaned ? { cleanup: cleaned } : {}) };
  }

  /** Kills the command's process group and makes sure its channel ends. */
  private async terminate(target: SshTarget, channel: ClientChannel, pgid: () => number | undefined, pgidKnown: Promise<void>, closed: Promise<void>): Promise<Cleanup> {
    // The group id is printed before the command starts; it may still be on its way.
    await Promise.race([pgidKnown, closed, sleep(this.killGraceMs)]);
    const group = pgid();
    const cleanup = group === undefined ? { pgid: undefined, signal: undefined, verified: false } : await this.killGroup(target, group);
    // A process that left the group may still hold the channel's pipes open.
    const ended = await Promise.race([closed.then(() => true), sleep(this.closeGraceMs).then(() => false)]);
    if (!ended) channel.close();
    return cleanup;
  }

  /** A second session signals the group: the first one's stdin is long closed and may be blocked on output. */
  private async killGroup(target: SshTarget, pgid: number): Promise<Cleanup> {
    try {
      // Not through the breaker: a host that just failed a probe may still be running our process.
      const launch = { commandLine: REMOTE_COMMAND, stdin: killProgram(pgid, this.killGraceMs) };
      const channel = await this.pool.exec(target, launch, { urgent: true });
      const closed = closedWithExit(channel);
      channel.resume();
      channel.stderr.resume();
      channel.end(launch.stdin);
      const code = (await closed)?.code;
      return { pgid, signal: code === 2 ? 'KILL' : 'TERM', verified: code === 0 || code === 2 };
    } catch {
      return { pgid, signal: undefined, verified: false };
    }
  }
}

function describe(stop: StopReason | undefined, exit: ChannelExit | undefined, request: RunRequest, outputError: unknown): { status: RunStatus; reason: string } {
  if (stop === 'timed_out') return { status: 'timed_out', reason: `timed out after ${request.timeoutMs} ms` };
  if (stop === 'canceled') return { status: 'canceled', reason: 'canceled while running' };
  if (stop === 'output_failed' || outputError !== undefined) {
    return { status: 'failed', reason: `the output could not be delivered: ${(outputError as Error | undefined)?.message ?? 'unknown error'}` };
  }
  if (exit === undefined) return { status: 'failed', reason: `the connection to ${serverOf(request.target)} was lost while the command ran` };
  if (exit.code === 0) return { status: 'completed', reason: '' };
  if (exit.code !== null) return { status: 'failed', reason: `exit code ${exit.code}` };
  return { status: 'failed', reason: `killed by signal ${exit.signal ?? 'unknown'}` };
}

function canceledBeforeStart(): RunResult {
  const now = new Date();
  return { status: 'canceled', exitCode: null, signal: null, reason: 'canceled before it started', startedAt: now, endedAt: now };
}
