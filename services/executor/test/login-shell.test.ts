import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd, type SshServer } from '@runnerhub/infra';
import { SshPool } from '../src/adapters/ssh-pool.js';
import { HostBreakers } from '../src/domain/breaker.js';
import { MemoryHostKeys, trustOnFirstUse } from '../src/domain/host-keys.js';
import { CommandRunner } from '../src/domain/run-command.js';
import { passwordTarget, TEST_PASSWORD } from './fleet.js';

// Accounts of their own: the login shell belongs to the account, which the other test files share.
let dataDir: string;
let bashServer: SshServer;
let unlistedServer: SshServer;
let pool: SshPool;
let breakers: HostBreakers;
let runner: CommandRunner;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'rh-login-shell-'));
  chmodSync(dataDir, 0o755);
  // bash under a name that is on no list of POSIX shells.
  mkdirSync(join(dataDir, 'shells'));
  const unlisted = join(dataDir, 'shells', 'rh-unlisted-shell');
  symlinkSync('/bin/bash', unlisted);
  [bashServer, unlistedServer] = await Promise.all([
    startSshd({ dataDir: join(dataDir, 'bash'), address: '127.0.0.71', user: 'rh-exec-bash', password: TEST_PASSWORD, loginShell: '/bin/bash' }),
    startSshd({ dataDir: join(dataDir, 'unlisted'), address: '127.0.0.72', user: 'rh-exec-unlisted', password: TEST_PASSWORD, loginShell: unlisted }),
  ]);
  pool = new SshPool({ verifyHostKey: trustOnFirstUse(new MemoryHostKeys()) });
  breakers = new HostBreakers();
  runner = new CommandRunner(pool, breakers);
});

afterAll(async () => {
  breakers?.shutdown();
  await pool?.close();
  await Promise.all([bashServer?.stop(), unlistedServer?.stop()]);
  rmSync(dataDir, { recursive: true, force: true });
});

async function stdoutOf(server: SshServer, command: string): Promise<string> {
  let stdout = '';
  const result = await runner.run({ target: passwordTarget(server), work: { command }, timeoutMs: 10_000, onOutput: (chunk) => void (chunk.stream === 'stdout' && (stdout += chunk.data.toString())) });
  expect(result.status).toBe('completed');
  return stdout;
}

const whichShell = 'echo "${BASH_VERSION:+bash} $0"';

test('a command runs in the account\'s login shell when that is a POSIX shell, as `ssh host command` runs it', async () => {
  expect(await stdoutOf(bashServer, whichShell)).toBe('bash bash\n');
  expect(await stdoutOf(bashServer, '[[ -n "$BASH" ]] && echo bash-syntax')).toBe('bash-syntax\n');
});

test('an account whose login shell is not a known POSIX shell has its commands read from stdin by /bin/sh', async () => {
  expect(await stdoutOf(unlistedServer, whichShell)).toBe(' /bin/sh\n');
});
