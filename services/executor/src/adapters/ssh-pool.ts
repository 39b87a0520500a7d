import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, ClientChannel } from 'ssh2';
import { withTimeout } from '@runnerhub/service-kit';
import type { HostKeyVerifier } from '../domain/host-keys.js';
import type { Launch } from '../domain/remote-program.js';
import { SshError } from '../domain/ssh-errors.js';
import { poolKeyOf, serverOf, type SshTarget } from '../domain/target.js';
import { closedWithExit, connectSsh, type ConnectOptions } from './ssh-connect.js';

// Two methods our patch of ssh2 adds (patches/ssh2@1.17.0.patch): a session
// opened ahead of its command, and the command started on it later.
declare module 'ssh2' {
  interface Client {
    openSession(callback: (error: Error | undefined, session: ClientChannel) => void): void;
    execOn(session: ClientChannel, command: string, callback: (error: Error | undefined, channel: ClientChannel) => void): void;
  }
}

export interface SshPoolOptions {
  verifyHostKey: HostKeyVerifier;
  connectTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Connections per pool key once one is full (each carries up to the server's MaxSessions channels). */
  maxConnectionsPerServer?: number;
  /** MaxSessions assumed for a target that names none: OpenSSH's default. */
  defaultMaxSessions?: number;
  /** An unused connection is closed after this long. */
  idleTimeoutMs?: number;
  /** How long a request may wait for a free session. */
  acquireTimeoutMs?: number;
  /** How long sshd may take to open a session and start its command: a server that stops answering fails the job instead of holding its slot. */
  startTimeoutMs?: number;
  /** Reconnect backoff after failed connection attempts: doubles from initial up to max. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** After a server refused credentials, the same credentials fail here without a new attempt for this long. */
  authFailureHoldMs?: number;
}

export interface PoolStats {
  connectAttempts: number;
  connectionsOpened: number;
  openConnections: number;
  channelsOpened: number;
  /** Of those, how many ran on a session opened ahead of them. */
  channelsPreopened: number;
  channelOpenRetries: number;
  peakChannelsPerConnection: number;
}

interface Connection {
  readonly client: Client;
  active: number;
  idleTimer?: NodeJS.Timeout;
  /**
   * A session opened ahead of the next command (undefined when it could not
   * be opened). It holds one of the connection's MaxSessions, and leaves one
   * more free (see keepSpare).
   */
  spare?: Promise<ClientChannel | undefined>;
}

interface Waiter {
  resolve(connection: Connection): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout;
}

interface Entry {
  key: string;
  target: SshTarget;
  maxSessions: number;
  connections: Connection[];
  waiters: Waiter[];
  connecting: boolean;
  failures: number;
  retryAt: number;
  authHold?: { until: number; error: SshError };
  /** The account's login shell, as its first connection reported it; undefined when it could not tell. */
  loginShell?: string;
  loginShellKnown: boolean;
}

/**
 * What a session runs, or what to run chosen once the connection (and so the
 * account's login shell) is known. Its stdin is the caller's to write once
 * the command started; when there is none, the pool closes the input with
 * the exec request, so sshd gets both in one read.
 */
export type SessionLaunch = Launch | ((loginShell: string | undefined) => Launch);

// sshd frees a session slot a moment after it reports the channel closed, so
// an open right after a close may be refused although MaxSessions is kept.
const OPEN_RETRIES = 6;

/**
 * ssh2 connections pooled per host:port:user and credentials. Each command
 * gets its own channel; a connection carries at most the server's
 * MaxSessions channels, more connections open up to a cap, and requests
 * beyond that queue. Requests waiting on a server that has no connection
 * share one connection attempt, so a down host or a wrong password costs one
 * attempt, not one per request.
 */
export class SshPool {
  private readonly entries = new Map<string, Entry>();
  private readonly settings: Required<Omit<SshPoolOptions, 'verifyHostKey'>>;
  private readonly connectOptions: ConnectOptions;
  private readonly counters = { connectAttempts: 0, connectionsOpened: 0, channelsOpened: 0, channelsPreopened: 0, channelOpenRetries: 0, peakChannelsPerConnection: 0 };
  private closed = false;

  constructor({ verifyHostKey, ...tunables }: SshPoolOptions) {
    this.settings = {
      connectTimeoutMs: 5_000,
      handshakeTimeoutMs: 10_000,
      keepaliveIntervalMs: 15_000,
      keepaliveCountMax: 3,
      maxConnectionsPerServer: 2,
      defaultMaxSessions: 10,
      idleTimeoutMs: 60_000,
      acquireTimeoutMs: 30_000,
      startTimeoutMs: 15_000,
      backoffInitialMs: 250,
      backoffMaxMs: 10_000,
      authFailureHoldMs: 60_000,
      ...withoutUndefined(tunables),
    };
    this.connectOptions = { verifyHostKey, ...this.settings };
  }

  /** Starts `command` on a session of its own; its session slot is given back when the channel closes. `urgent` requests jump the queue. */
  async exec(target: SshTarget, command: SessionLaunch, options: { urgent?: boolean } = {}): Promise<ClientChannel> {
    for (let attempt = 0; ; attempt++) {
      // Looked up each time: an unused entry is forgotten while we wait to retry.
      const entry = this.entryFor(target);
      const connection = await this.acquire(entry, options.urgent ?? false);
      try {
        const started = this.start(entry, connection, typeof command === 'function' ? command(entry.loginShell) : command);
        const channel = await withTimeout(started, this.settings.startTimeoutMs, () => {
          // A late one is closed: nobody will read it.
          void started.then((late) => late.close(), () => undefined);
          return new SshError('CHANNEL_OPEN_FAILED', `${serverOf(target)} did not start the command within ${this.settings.startTimeoutMs} ms`);
        });
        this.counters.channelsOpened++;
        channel.once('close', () => this.release(entry, connection));
        return channel;
      } catch (error) {
        this.release(entry, connection);
        // A server that did not answer in time is not asked again at once.
        if (error instanceof SshError) throw error;
        if (attempt >= OPEN_RETRIES) {
          throw new SshError('CHANNEL_OPEN_FAILED', `${serverOf(target)} refused a new session: ${(error as Error).message}`);
        }
        this.counters.channelOpenRetries++;
        await sleep(2 ** attempt);
      }
    }
  }

  /**
   * Starts the command on the connection's spare session when there is one,
   * else on a session of its own, and opens the next spare meanwhile: with
   * one ready, a command costs the server one round trip instead of two.
   */
  private async start(entry: Entry, connection: Connection, command: Launch): Promise<ClientChannel> {
    const spare = connection.spare;
    connection.spare = undefined;
    this.keepSpare(entry, connection);
    const ready = await spare;
    // A spare that went meanwhile fails the exec at once, and exec() tries again with a session of its own.
    const channel = await execOn(connection.client, ready ?? (await openSession(connection.client)), command);
    if (ready) this.counters.channelsPreopened++;
    return channel;
  }

  /**
   * Opens a spare session on the connection if it has none and a slot stays
   * free besides: sshd still counts a session it just reported closed, and
   * refuses an open that only that slot would make room for.
   */
  private keepSpare(entry: Entry, connection: Connection): void {
    if (this.closed || connection.spare || connection.active + 2 > entry.maxSessions || !entry.connections.includes(connection)) return;
    const spare = openSession(connection.client).catch(() => undefined);
    connection.spare = spare;
    // One that failed to open is forgotten: the next command opens its own session and tries again.
    void spare.then((session) => {
      if (!session && connection.spare === spare) connection.spare = undefined;
    });
  }

  stats(): PoolStats {
    let openConnections = 0;
    for (const entry of this.entries.values()) openConnections += entry.connections.length;
    return { ...this.counters, openConnections };
  }

  async close(): Promise<void> {
    this.closed = true;
    const closing: Promise<unknown>[] = [];
    for (const entry of this.entries.values()) {
      this.failWaiters(entry, new SshError('CLOSED', 'the SSH pool is closing'));
      for (const connection of entry.connections) {
        closing.push(new Promise<void>((resolve) => connection.client.once('close', () => resolve())));
        connection.client.end();
      }
    }
    await Promise.race([Promise.all(closing), sleep(2_000, undefined, { ref: false })]);
    this.entries.clear();
  }

  private entryFor(target: SshTarget): Entry {
    if (this.closed) throw new SshError('CLOSED', 'the SSH pool is closed');
    const key = poolKeyOf(target);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { key, target, maxSessions: 0, connections: [], waiters: [], connecting: false, failures: 0, retryAt: 0, loginShellKnown: false };
      this.entries.set(key, entry);
    }
    // Inventory may have changed the server's limit since the last request.
    entry.maxSessions = Math.max(1, target.maxSessions ?? this.settings.defaultMaxSessions);
    return entry;
  }

  private acquire(entry: Entry, urgent: boolean): Promise<Connection> {
    const hold = entry.authHold;
    if (hold && hold.until > Date.now()) return Promise.reject(hold.error);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          entry.waiters.splice(entry.waiters.indexOf(waiter), 1);
          reject(new SshError('POOL_BUSY', `no session on ${serverOf(entry.target)} became free within ${this.settings.acquireTimeoutMs} ms`));
        }, this.settings.acquireTimeoutMs),
      };
      if (urgent) entry.waiters.unshift(waiter);
      else entry.waiters.push(waiter);
      this.pump(entry);
    });
  }

  /** Hands free session slots to waiters in order, and opens a connection when they need one. */
  private pump(entry: Entry): void {
    while (entry.waiters.length > 0) {
      const connection = entry.connections.find((candidate) => candidate.active < entry.maxSessions);
      if (!connection) break;
      const waiter = entry.waiters.shift() as Waiter;
      clearTimeout(waiter.timer);
      clearTimeout(connection.idleTimer);
      connection.active++;
      this.counters.peakChannelsPerConnection = Math.max(this.counters.peakChannelsPerConnection, connection.active);
      waiter.resolve(connection);
    }
    if (entry.waiters.length > 0 && !entry.connecting && entry.connections.length < this.settings.maxConnectionsPerServer) {
      void this.grow(entry);
    }
  }

  private async grow(entry: Entry): Promise<void> {
    entry.connecting = true;
    try {
      const backoff = entry.retryAt - Date.now();
      if (backoff > 0) await sleep(backoff);
      this.counters.connectAttempts++;
      const client = await connectSsh(entry.target, this.connectOptions);
      if (!entry.loginShellKnown) {
        entry.loginShell = await probeLoginShell(client, this.settings.connectTimeoutMs);
        entry.loginShellKnown = true;
      }
      if (this.closed) {
        client.end();
        return;
      }
      entry.failures = 0;
      entry.retryAt = 0;
      entry.authHold = undefined;
      const connection: Connection = { client, active: 0 };
      entry.connections.push(connection);
      this.counters.connectionsOpened++;
      client.once('close', () => this.drop(entry, connection));
      this.keepSpare(entry, connection);
    } catch (error) {
      const failure = error instanceof SshError ? error : new SshError('CONNECTION_LOST', (error as Error).message);
      if (failure.kind === 'AUTH_FAILED') entry.authHold = { until: Date.now() + this.settings.authFailureHoldMs, error: failure };
      if (failure.outage) {
        entry.failures++;
        entry.retryAt = Date.now() + backoffDelay(entry.failures, this.settings.backoffInitialMs, this.settings.backoffMaxMs);
      }
      // With no connection at all, every waiter shares this failure instead of trying again.
      if (entry.connections.length === 0) this.failWaiters(entry, failure);
    } finally {
      entry.connecting = false;
      if (!this.closed) this.pump(entry);
    }
  }

  private release(entry: Entry, connection: Connection): void {
    connection.active--;
    this.keepSpare(entry, connection);
    if (connection.active === 0 && entry.connections.includes(connection)) {
      connection.idleTimer = setTimeout(() => connection.client.end(), this.settings.idleTimeoutMs);
      connection.idleTimer.unref();
    }
    this.pump(entry);
  }

  /** A connection ended (idle, keep-alive timeout, server gone): later requests get a new one. */
  private drop(entry: Entry, connection: Connection): void {
    clearTimeout(connection.idleTimer);
    entry.connections = entry.connections.filter((candidate) => candidate !== connection);
    if (this.closed) return;
    this.pump(entry);
    // Forget a server nobody uses unless it remembers a failure (backoff, refused credentials).
    if (entry.connections.length === 0 && entry.waiters.length === 0 && !entry.connecting && entry.failures === 0 && !entry.authHold) {
      this.entries.delete(entry.key);
    }
  }

  private failWaiters(entry: Entry, error: SshError): void {
    for (const waiter of entry.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }
}

/**
 * sshd sets SHELL to the account's login shell, and this line means the same
 * in every shell, POSIX or not. A shell that cannot answer (nologin, a
 * refused session, no answer in time) counts as unknown.
 */
async function probeLoginShell(client: Client, timeoutMs: number): Promise<string | undefined> {
  let channel: ClientChannel | undefined;
  const probe = (async () => {
    channel = await execOn(client, await openSession(client), { commandLine: 'printf %s "$SHELL"', stdin: '' });
    let output = '';
    channel.on('data', (data: Buffer) => (output += data.toString()));
    channel.stderr.resume();
    const exit = await closedWithExit(channel);
    return exit?.code === 0 && /^\/\S*$/.test(output) ? output : undefined;
  })().catch(() => undefined);
  const giveUp = new AbortController();
  const timedOut = sleep(timeoutMs, undefined, { signal: giveUp.signal }).then(
    () => {
      channel?.close();
      return undefined;
    },
    () => undefined,
  );
  const shell = await Promise.race([probe, timedOut]);
  giveUp.abort();
  return shell;
}

function openSession(client: Client): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    try {
      client.openSession((error, session) => (error ? reject(error) : resolve(session)));
    } catch (error) {
      // ssh2 throws "Not connected" at once on a connection that just ended.
      reject(error);
    }
  });
}

/**
 * Sends the exec request (and the end of input, when the command reads none)
 * at once; resolves when sshd confirms. A refused session is closed, so that
 * it frees its slot.
 */
function execOn(client: Client, session: ClientChannel, command: Launch): Promise<ClientChannel> {
  const started = new Promise<ClientChannel>((resolve, reject) =>
    client.execOn(session, command.commandLine, (error, channel) => {
      if (!error) return resolve(channel);
      session.close();
      reject(error);
    }),
  );
  if (command.stdin === '') session.eof();
  return started;
}

/** Exponential with jitter, so many executors do not reconnect in step. */
function backoffDelay(failures: number, initialMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** (failures - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
