import { connect as tcpConnect, type Socket } from 'node:net';
import ssh2, { Client, type ClientChannel, type ParsedKey, type PasswordAuthMethod, type PublicKeyAuthMethod } from 'ssh2';
import type { HostKeyVerifier } from '../domain/host-keys.js';
import { SshError } from '../domain/ssh-errors.js';
import { fingerprintOf, serverOf, type SshTarget } from '../domain/target.js';

export interface ConnectOptions {
  verifyHostKey: HostKeyVerifier;
  connectTimeoutMs: number;
  /** From TCP connected to authenticated (key exchange and login). */
  handshakeTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
}

/** One authenticated ssh2 connection, or an SshError saying why not. */
export async function connectSsh(target: SshTarget, options: ConnectOptions): Promise<Client> {
  const server = serverOf(target);
  const authHandler = authMethods(target);
  const sock = await openSocket(target, options.connectTimeoutMs);
  const client = new Client();
  // The verifier's own error (HOST_KEY_CHANGED) is clearer than ssh2's "verification failed".
  let refusal: unknown;
  return new Promise((resolve, reject) => {
    let settled = false;
    client.once('ready', () => {
      settled = true;
      resolve(client);
    });
    // Stays attached: ssh2 may report more errors as the socket goes, and after
    // login a failure always ends in 'close', which the pool watches.
    const onError = (error: Error & { level?: string }) => {
      if (settled) return;
      settled = true;
      sock.destroy();
      reject(refusal ?? classify(error, server, target.username, options.handshakeTimeoutMs));
    };
    client.on('error', onError);
    try {
      client.connect({
        sock,
        username: target.username,
        authHandler,
        readyTimeout: options.handshakeTimeoutMs,
        keepaliveInterval: options.keepaliveIntervalMs,
        keepaliveCountMax: options.keepaliveCountMax,
        hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
          Promise.resolve()
            .then(() => options.verifyHostKey(server, fingerprintOf(key), target))
            .then(
              () => verify(true),
              (error: unknown) => {
                refusal = error;
                verify(false);
              },
            );
        },
      });
    } catch (error) {
      // ssh2 throws at once for a configuration it rejects.
      onError(error as Error);
    }
  });
}

/**
 * Only the methods we hold, in a fixed order: no "none" probe, no
 * keyboard-interactive. The key is parsed (and decrypted, which costs a
 * bcrypt KDF) here, before any connection: a key that cannot be used never
 * reaches the server.
 */
function authMethods(target: SshTarget): (PublicKeyAuthMethod | PasswordAuthMethod)[] {
  const { password, privateKey, passphrase } = target.credentials;
  const username = target.username;
  const methods: (PublicKeyAuthMethod | PasswordAuthMethod)[] = [];
  if (privateKey) {
    // ssh2 is CommonJS: Node's ESM loader sees `utils` only on the default export.
    const parsed = ssh2.utils.parseKey(privateKey, passphrase);
    if (parsed instanceof Error) {
      throw new SshError('INVALID_CREDENTIALS', `the private key for ${username}@${serverOf(target)} cannot be used: ${parsed.message}`, 'credentials');
    }
    // OpenSSH's format yields a list of one key.
    methods.push({ type: 'publickey', username, key: Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed });
  }
  if (password) methods.push({ type: 'password', username, password });
  if (methods.length === 0) throw new SshError('INVALID_CREDENTIALS', `no password or private key for ${username}@${serverOf(target)}`, 'credentials');
  return methods;
}

export interface ChannelExit {
  code: number | null;
  /** As OpenSSH names signals ("TERM"), when the command was killed by one. */
  signal: string | null;
}

/**
 * Resolves when the channel closes, with how its command ended (undefined
 * when it closed without an exit status). Read from the close event, where
 * ssh2 repeats the exit status: its 'exit' event can come and go before the
 * channel is even handed over, when a fast command's whole life arrives in
 * one read.
 */
export function closedWithExit(channel: ClientChannel): Promise<ChannelExit | undefined> {
  return new Promise((resolve) =>
    channel.once('close', (code?: number | null, signal?: string) => {
      if (code === undefined) resolve(undefined);
      else resolve({ code, signal: code === null ? (signal?.replace(/^SIG/, '') ?? null) : null });
    }),
  );
}

/**
 * Our own socket with TCP_NODELAY: ssh2 leaves Nagle on, and every channel
 * open then waits about 40 ms for a delayed ACK. Its writes are coalesced
 * per tick (see coalesceWrites).
 */
function openSocket(target: SshTarget, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect({ host: target.host, port: target.port });
    sock.setNoDelay(true);
    coalesceWrites(sock);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new SshError('CONNECT_TIMEOUT', `${serverOf(target)} did not accept a TCP connection within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new SshError('UNREACHABLE', `${serverOf(target)} is unreachable (${error.code ?? error.message})`));
    });
  });
}

/**
 * Sends everything written in one tick as one write. ssh2 (without its
 * native binding, whose install script does not run here) writes each packet
 * in three pieces (length, payload, MAC), and a job's channel data and EOF
 * follow one another: with Nagle off every piece was its own segment, a
 * system call here and a wake-up of sshd there, 15 writes per `echo`
 * instead of 5.
 */
export function coalesceWrites(socket: Socket): void {
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as Socket['write'];
}

function classify(error: Error & { level?: string }, server: string, username: string, handshakeTimeoutMs: number): SshError {
  if (error.level === 'client-authentication') {
    return new SshError('AUTH_FAILED', `${server} refused the credentials of ${username}`);
  }
  if (error.level === 'client-timeout') {
    return new SshError('HANDSHAKE_TIMEOUT', `${server} did not complete the SSH handshake within ${handshakeTimeoutMs} ms`);
  }
  return new SshError('CONNECTION_LOST', `the SSH connection to ${server} failed: ${error.message}`);
}
