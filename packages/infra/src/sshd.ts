import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { assertPortFree, execFileAsync, freePort, InfraError, isAlive, isPortOpen, readPid, requireBinary, spawnDaemon, stopPid, waitFor } from './process.js';

const SSHD_BIN = '/usr/sbin/sshd';
const SSH_KEYGEN_BIN = '/usr/bin/ssh-keygen';

export interface SshdOptions {
  dataDir: string;
  /** A loopback address of 127.0.0.0/8: several addresses make a fleet on one machine. */
  address?: string;
  port?: number;
  /** The only account this sshd lets in; created by ensureTestUser when missing. */
  user: string;
  /** The account's login shell (default /bin/sh). */
  loginShell?: string;
  /** Turns password login on and sets it as the account's password (the password belongs to the account, not to one sshd). */
  password?: string;
  /** Public keys in authorized_keys format. */
  authorizedKeys?: string[];
  /** Sessions (channels) per connection, OpenSSH's MaxSessions (default 10). */
  maxSessions?: number;
  /** VERBOSE (the default) logs every connection and login attempt, which tests count. */
  logLevel?: 'QUIET' | 'ERROR' | 'INFO' | 'VERBOSE' | 'DEBUG';
}

export interface SshServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** As OpenSSH prints it: `SHA256:` and unpadded base64. Changes with rotateHostKey. */
  readonly hostKeyFingerprint: string;
  readonly logFile: string;
  start(): Promise<void>;
  /** Stops the listener; connections already open live on in their own sshd processes, as with a real sshd restart. */
  stop(): Promise<void>;
  /** SIGKILL of the listener, as a crash would. */
  kill(): Promise<void>;
  /** A new host key and a restart; returns the new fingerprint. */
  rotateHostKey(): Promise<string>;
}

export interface SshFleet {
  readonly servers: SshServer[];
  stop(): Promise<void>;
}

/** Starts one OpenSSH server with its own configuration, host key, pid file and log under dataDir. */
export async function startSshd(options: SshdOptions): Promise<SshServer> {
  requireBinary(SSHD_BIN, 'openssh-server');
  requireBinary(SSH_KEYGEN_BIN, 'openssh-client');
  const host = options.address ?? '127.0.0.1';
  if (!host.startsWith('127.')) throw new InfraError(`sshd for tests listens on loopback only, not on ${host}`);
  const port = options.port ?? (await freePort(host));
  mkdirSync(options.dataDir, { recursive: true });
  chmodSync(options.dataDir, 0o755);
  if (options.authorizedKeys?.length) assertSearchable(options.dataDir, options.user);
  // sshd refuses to start without its privilege-separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  await ensureTestUser(options.user, options.password, options.loginShell);

  const paths = {
    config: join(options.dataDir, 'sshd_config'),
    hostKey: join(options.dataDir, 'ssh_host_ed25519_key'),
    authorizedKeys: join(options.dataDir, 'authorized_keys'),
    pidFile: join(options.dataDir, 'sshd.pid'),
    log: join(options.dataDir, 'sshd.log'),
  };
  writeFileSync(paths.authorizedKeys, (options.authorizedKeys ?? []).map((key) => `${key.trim()}\n`).join(''), { mode: 0o644 });
  writeFileSync(paths.config, await configText(host, port, options, paths));
  let fingerprint = await generateHostKey(paths.hostKey);

  let pid: number | undefined;
  const start = async () => {
    await assertPortFree(port, 'sshd', host);
    // -D keeps the spawned process the daemon itself, so an early exit (bad config) is seen at once.
    const started = spawnDaemon(SSHD_BIN, ['-D', '-f', paths.config, '-E', paths.log]);
    pid = started;
    await waitFor(`sshd on ${host}:${port}`, async () => {
      if (!isAlive(started)) throw new InfraError(`sshd on ${host}:${port} exited: ${lastLines(paths.log)}`);
      return isPortOpen(port, host);
    });
  };
  const stop = () => stopPid(readPid(paths.pidFile) ?? pid);
  await start();
  return {
    host,
    port,
    user: options.user,
    get hostKeyFingerprint() {
      return fingerprint;
    },
    logFile: paths.log,
    start,
    stop,
    kill: () => stopPid(readPid(paths.pidFile) ?? pid, 5_000, 'SIGKILL'),
    rotateHostKey: async () => {
      await stop();
      fingerprint = await generateHostKey(paths.hostKey);
      await start();
      return fingerprint;
    },
  };
}

/** Servers on 127.0.0.11, .12, …: one address each, as distinct hosts would have. */
export async function startSshdFleet(count: number, options: Omit<SshdOptions, 'address' | 'port'> & { firstAddress?: number }): Promise<SshFleet> {
  const first = options.firstAddress ?? 11;
  if (count < 1 || first + count - 1 > 254) throw new InfraError(`a fleet of ${count} from 127.0.0.${first} does not fit in 127.0.0.0/24`);
  // One account for the whole fleet, created before the servers start in parallel.
  await ensureTestUser(options.user, options.password, options.loginShell);
  const servers = await Promise.all(
    Array.from({ length: count }, (_, i) => startSshd({ ...options, address: `127.0.0.${first + i}`, dataDir: join(options.dataDir, `sshd-${i}`) })),
  );
  return { servers, stop: async () => void (await Promise.all(servers.map((server) => server.stop()))) };
}

/**
 * A dedicated login account for test servers: its shell is /bin/sh unless
 * another is asked for, so no ~/.bashrc runs before each command (root's
 * costs about 150 ms here). With a
 * password it gets that password; without one, a locked account is unlocked
 * with `*` (no password can match) because sshd without PAM refuses even key
 * logins to a locked account.
 */
export function ensureTestUser(name: string, password?: string, loginShell = '/bin/sh'): Promise<void> {
  if (!/^[a-z_][a-z0-9_-]{0,30}$/.test(name) || name === 'root') return Promise.reject(new InfraError(`"${name}" is not a name for a dedicated test account`));
  // One at a time in this process; other processes are met by retrying the shadow tools' locks.
  const next = accountChanges.then(() => changeAccount(name, password, loginShell));
  accountChanges = next.catch(() => {});
  return next;
}

let accountChanges: Promise<void> = Promise.resolve();

async function changeAccount(name: string, password: string | undefined, loginShell: string): Promise<void> {
  await retryLocked(async () => {
    const current = await loginShellOf(name);
    if (current === undefined) await execFileAsync('useradd', ['-m', '-s', loginShell, name]);
    else if (current !== loginShell) await execFileAsync('usermod', ['-s', loginShell, name]);
  }, `create the test user ${name}`);
  const current = await shadowHash(name);
  if (password !== undefined) {
    // The same password again writes nothing. Both tools read the secret on stdin, so it never shows in a process list.
    const salt = /^\$6\$([^$]+)\$/.exec(current)?.[1];
    if (salt && (await withInput('openssl', ['passwd', '-6', '-salt', salt, '-stdin'], `${password}\n`)).trim() === current) return;
    const hash = (await withInput('openssl', ['passwd', '-6', '-stdin'], `${password}\n`)).trim();
    await retryLocked(() => withInput('chpasswd', ['-e'], `${name}:${hash}\n`), `set the password of ${name}`);
  } else if (current.startsWith('!')) {
    await retryLocked(() => execFileAsync('usermod', ['-p', '*', name]), `unlock ${name}`);
  }
}

async function retryLocked(action: () => Promise<unknown>, what: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await action();
      return;
    } catch (error) {
      const message = (error as Error).message;
      if (attempt >= 10 || !/lock|busy|already exists/i.test(message)) throw new InfraError(`could not ${what}: ${message}`);
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}

async function configText(host: string, port: number, options: SshdOptions, paths: { hostKey: string; authorizedKeys: string; pidFile: string }): Promise<string> {
  const lines = [
    `Port ${port}`,
    `ListenAddress ${host}`,
    `HostKey ${paths.hostKey}`,
    `PidFile ${paths.pidFile}`,
    // An absolute path without %u/%h: the keys live in this server's own directory.
    `AuthorizedKeysFile ${paths.authorizedKeys}`,
    // The files live in a temporary directory whose modes sshd would otherwise reject.
    'StrictModes no',
    `AllowUsers ${options.user}`,
    `PasswordAuthentication ${options.password !== undefined ? 'yes' : 'no'}`,
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin no',
    'UsePAM no',
    `MaxSessions ${options.maxSessions ?? 10}`,
    // Tests open many connections at once; the default 10:30:100 drops some before they log in.
    'MaxStartups 200',
    `LogLevel ${options.logLevel ?? 'VERBOSE'}`,
    'UseDNS no',
    'PrintMotd no',
    'Subsystem sftp internal-sftp',
  ];
  // OpenSSH 9.8 and later penalise addresses with failed logins; tests fail logins on purpose.
  if (await supportsPerSourcePenalties()) lines.push('PerSourcePenalties no');
  return `${lines.join('\n')}\n`;
}

let penaltiesSupported: Promise<boolean> | undefined;
function supportsPerSourcePenalties(): Promise<boolean> {
  penaltiesSupported ??= execFileAsync('/usr/bin/ssh', ['-V']).then(
    ({ stderr }) => {
      const [, major = '0', minor = '0'] = /OpenSSH_(\d+)\.(\d+)/.exec(String(stderr)) ?? [];
      return Number(major) * 100 + Number(minor) >= 908;
    },
    () => false,
  );
  return penaltiesSupported;
}

async function generateHostKey(path: string): Promise<string> {
  rmSync(path, { force: true });
  rmSync(`${path}.pub`, { force: true });
  await execFileAsync(SSH_KEYGEN_BIN, ['-q', '-t', 'ed25519', '-N', '', '-C', 'runnerhub-test-host', '-f', path]);
  const { stdout } = await execFileAsync(SSH_KEYGEN_BIN, ['-l', '-E', 'sha256', '-f', `${path}.pub`]);
  const fingerprint = String(stdout).split(' ')[1];
  if (!fingerprint?.startsWith('SHA256:')) throw new InfraError(`ssh-keygen printed no fingerprint for ${path}: ${String(stdout)}`);
  return fingerprint;
}

/** Undefined when there is no such account. */
async function loginShellOf(name: string): Promise<string | undefined> {
  return execFileAsync('getent', ['passwd', name]).then(({ stdout }) => String(stdout).trim().split(':')[6], () => undefined);
}

async function shadowHash(name: string): Promise<string> {
  const { stdout } = await execFileAsync('getent', ['shadow', name]);
  return String(stdout).split(':')[1] ?? '';
}

function withInput(command: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.on('error', (error) => reject(new InfraError(`${command} could not run: ${error.message}`)));
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new InfraError(`${command} failed: ${stderr.trim()}`))));
    child.stdin.end(input);
  });
}

/** sshd reads authorized_keys as the user: every directory above it must let others through. */
function assertSearchable(dir: string, user: string): void {
  for (let current = resolve(dir); ; current = dirname(current)) {
    if ((statSync(current).mode & 0o001) === 0) {
      throw new InfraError(`${current} is not searchable by others, so sshd (reading keys as ${user}) cannot reach ${dir}: chmod o+x it or choose another dataDir`);
    }
    if (current === dirname(current)) return;
  }
}

function lastLines(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return 'no log';
  }
}
