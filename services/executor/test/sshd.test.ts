import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { isPortOpen } from '@runnerhub/infra';
import { KEY_PASSPHRASE, logCount, remoteProcesses, sshExec, startTestFleet, TEST_USER, type TestFleet } from './fleet.js';

// The sshd harness of @runnerhub/infra, checked with a real SSH client (ssh2
// lives in this package, so the harness test lives here too).
let fleet: TestFleet;

beforeAll(async () => {
  fleet = await startTestFleet(2, { firstAddress: 21 });
});

afterAll(async () => {
  await fleet?.stop();
});

function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

test('a fleet listens on consecutive loopback addresses as a dedicated user with /bin/sh', async () => {
  expect(fleet.servers.map((server) => server.host)).toEqual(['127.0.0.21', '127.0.0.22']);
  const { stdout, code } = await sshExec(fleet.servers[0]!, 'id -un; echo $SHELL');
  expect(code).toBe(0);
  expect(stdout).toBe(`${TEST_USER}\n/bin/sh\n`);
});

test('password login works and a wrong password is refused', async () => {
  const server = fleet.servers[0]!;
  expect((await sshExec(server, 'echo ok')).stdout).toBe('ok\n');
  await expect(sshExec(server, 'echo ok', { password: 'not-the-password' })).rejects.toThrow(/authentication methods failed/);
  expect(logCount(server, /Failed password for rh-exec-test/)).toBeGreaterThanOrEqual(1);
});

test('key login works with the authorized key', async () => {
  const { stdout } = await sshExec(fleet.servers[1]!, 'echo key', { privateKey: fleet.clientKey.private, passphrase: KEY_PASSPHRASE });
  expect(stdout).toBe('key\n');
  expect(logCount(fleet.servers[1]!, /Accepted publickey for rh-exec-test/)).toBe(1);
});

test('the fingerprint is the one OpenSSH prints and the one the server offers', async () => {
  const server = fleet.servers[0]!;
  const publicKey = join(dirname(server.logFile), 'ssh_host_ed25519_key.pub');
  const printed = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', publicKey]).toString();
  expect(printed.split(' ')[1]).toBe(server.hostKeyFingerprint);
  expect(fingerprint((await sshExec(server, 'true')).hostKey)).toBe(server.hostKeyFingerprint);
});

test('rotateHostKey gives the server a new key on the same port', async () => {
  const server = fleet.servers[1]!;
  const before = server.hostKeyFingerprint;
  const after = await server.rotateHostKey();
  expect(after).not.toBe(before);
  expect(server.hostKeyFingerprint).toBe(after);
  expect(fingerprint((await sshExec(server, 'true')).hostKey)).toBe(after);
});

test('stop closes the port and start opens it again on the same port', async () => {
  const server = fleet.servers[1]!;
  await server.stop();
  expect(await isPortOpen(server.port, server.host)).toBe(false);
  await expect(sshExec(server, 'true')).rejects.toThrow(/ECONNREFUSED/);
  await server.start();
  expect((await sshExec(server, 'echo back')).stdout).toBe('back\n');
});

test('the process witness sees a live remote process and not one that was killed', async () => {
  const server = fleet.servers[0]!;
  await sshExec(server, 'sleep 2468 >/dev/null 2>&1 </dev/null &');
  expect(await remoteProcesses(server, 'sleep 2468')).toHaveLength(1);
  await sshExec(server, "pkill -f 'sleep 2468'");
  // Killed orphans may stay zombies where PID 1 does not reap them; the witness ignores those.
  expect(await remoteProcesses(server, 'sleep 2468')).toEqual([]);
});
