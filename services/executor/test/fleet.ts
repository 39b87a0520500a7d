import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tcpConnect } from 'node:net';
import { Client, utils } from 'ssh2';
import { startSshdFleet, type SshFleet, type SshServer } from '@runnerhub/infra';
import type { SshTarget } from '../src/domain/target.js';

// One account for every executor test file: the password belongs to the account.
export const TEST_USER = 'rh-exec-test';
export const TEST_PASSWORD = 'executor-test-password';
export const KEY_PASSPHRASE = 'executor-key-passphrase';

export interface TestFleet {
  servers: SshServer[];
  fleet: SshFleet;
  clientKey: { private: string; public: string };
  stop(): Promise<void>;
}

/**
 * An encrypted ed25519 client key. ssh2's generator now and then writes one
 * its own parser refuses ("Malformed OpenSSH private key"; seen in CI), so
 * only a key that parses back is used.
 */
function generateClientKey(): { private: string; public: string } {
  for (let attempt = 0; attempt < 10; attempt++) {
    const key = utils.generateKeyPairSync('ed25519', { passphrase: KEY_PASSPHRASE, cipher: 'aes256-ctr', rounds: 4 });
    if (!(utils.parseKey(key.private, KEY_PASSPHRASE) instanceof Error)) return key;
  }
  throw new Error('could not generate a client key that parses');
}

/** sshd servers on 127.0.0.<first>…, accepting TEST_PASSWORD and a fresh client key. */
export async function startTestFleet(count: number, options: { firstAddress: number; maxSessions?: number }): Promise<TestFleet> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rh-executor-'));
  // sshd reads the authorized keys as the test user.
  chmodSync(dataDir, 0o755);
  const clientKey = generateClientKey();
  const fleet = await startSshdFleet(count, {
    dataDir,
    firstAddress: options.firstAddress,
    user: TEST_USER,
    password: TEST_PASSWORD,
    authorizedKeys: [clientKey.public],
    maxSessions: options.maxSessions,
  });
  return {
    servers: fleet.servers,
    fleet,
    clientKey,
    stop: async () => {
      await fleet.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function keyTarget(server: SshServer, privateKey: string, passphrase = KEY_PASSPHRASE): SshTarget {
  return { host: server.host, port: server.port, username: server.user, credentials: { privateKey, passphrase } };
}

export function passwordTarget(server: SshServer, password = TEST_PASSWORD, maxSessions?: number): SshTarget {
  return { host: server.host, port: server.port, username: server.user, credentials: { password }, maxSessions };
}

/** Lines of the server's log matching `pattern`: sshd logs every connection and login at VERBOSE. */
export function logCount(server: SshServer, pattern: RegExp): number {
  return readFileSync(server.logFile, 'utf8').split('\n').filter((line) => pattern.test(line)).length;
}

/** One command over a fresh, independent ssh2 connection: a witness outside the pool under test. */
export async function sshExec(server: SshServer, command: string, credentials: { password?: string; privateKey?: string; passphrase?: string } = { password: TEST_PASSWORD }): Promise<{ stdout: string; code: number | null; hostKey: Buffer }> {
  const client = new Client();
  let hostKey: Buffer = Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve()).once('error', reject);
    client.connect({
      sock: tcpConnect(server.port, server.host),
      username: server.user,
      ...credentials,
      authHandler: credentials.privateKey ? ['publickey'] : ['password'],
      readyTimeout: 5_000,
      hostVerifier: (key: Buffer) => {
        hostKey = key;
        return true;
      },
    });
  });
  try {
    return await new Promise((resolve, reject) => {
      client.exec(command, (error, channel) => {
        if (error) return reject(error);
        let stdout = '';
        let code: number | null = null;
        channel.on('data', (data: Buffer) => (stdout += data.toString()));
        channel.stderr.resume();
        channel.on('exit', (status: number | null) => (code = status));
        channel.on('close', () => resolve({ stdout, code, hostKey }));
      });
    });
  } finally {
    client.end();
  }
}

/** Live (not zombie) processes of the test user whose command line contains `needle`. */
export async function remoteProcesses(server: SshServer, needle: string): Promise<string[]> {
  const { stdout } = await sshExec(server, `ps -u ${TEST_USER} -o stat=,args=`);
  return stdout.split('\n').filter((line) => line.includes(needle) && !line.trim().startsWith('Z') && !line.includes('ps -u'));
}
