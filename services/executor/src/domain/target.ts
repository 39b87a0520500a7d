import { createHash, createHmac, randomBytes } from 'node:crypto';

export interface SshCredentials {
  password?: string;
  /** OpenSSH or PEM private key. */
  privateKey?: string | Buffer;
  passphrase?: string;
}

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  credentials: SshCredentials;
  /** The server's MaxSessions: channels one connection may carry at once (OpenSSH's default is 10). */
  maxSessions?: number;
  /** Which inventory record the host key belongs to, when the target came from inventory. */
  hostKey?: HostKeyScope;
}

export interface HostKeyScope {
  organizationUid: string;
  serverUid: string;
  /** The fingerprint already recorded (or named by the dispatch); empty: trust on first use. */
  expected: string;
}

/** `host:port`: what a host key and a circuit breaker belong to. */
export function serverOf(target: Pick<SshTarget, 'host' | 'port'>): string {
  return `${target.host}:${target.port}`;
}

// Per process, so the digests kept in memory cannot be used to test guesses offline.
const digestKey = randomBytes(32);

/**
 * The pool key: host:port:user plus a keyed digest of the credentials, so a
 * connection authenticated with one credential is never lent to a request
 * carrying another (two organisations may name the same host and user).
 */
export function poolKeyOf(target: SshTarget): string {
  const { password = '', privateKey = '', passphrase = '' } = target.credentials;
  const digest = createHmac('sha256', digestKey).update(password).update('\0').update(privateKey).update('\0').update(passphrase).digest('base64url').slice(0, 16);
  return `${serverOf(target)}:${target.username}#${digest}`;
}

/** The fingerprint of a raw host key as OpenSSH prints it: SHA256 and unpadded base64. */
export function fingerprintOf(hostKey: Buffer): string {
  return `SHA256:${createHash('sha256').update(hostKey).digest('base64').replace(/=+$/, '')}`;
}
