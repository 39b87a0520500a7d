import { randomUUID } from 'node:crypto';
import { basename } from 'node:path';
import { SshError } from './ssh-errors.js';

/**
 * The command line that runs a program sent over the channel's stdin with
 * /bin/sh, whatever the login shell: scripts always, commands when the login
 * shell is not a known POSIX shell. `exec` keeps the session's process: sshd
 * made it a session and process-group leader, so `$$` is the group to signal.
 */
export const REMOTE_COMMAND = 'exec /bin/sh -s';

/** Login shells (by name) that run a POSIX program given to them with -c. */
const POSIX_LOGIN_SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'ksh', 'ksh93', 'mksh', 'zsh', 'yash']);

/** A program this long goes over stdin even on a POSIX login shell: Linux limits one argument to 128 KiB. */
const COMMAND_LINE_MAX_BYTES = 64 * 1024;

export type Work = { command: string } | { script: string; shell?: string };

export interface RemoteProgram {
  /** The program for a POSIX shell. */
  text: string;
  /** Printed first on stdout, followed by the process group id and a newline. */
  marker: string;
  /**
   * A command without environment may be the session's command line itself.
   * A script never is, nor are environment values: a command line shows in
   * every process list on the server, and values may be secrets.
   */
  commandLineOk: boolean;
}

/** What a session is opened with, and what is then written to its stdin. */
export interface Launch {
  commandLine: string;
  stdin: string;
}

/**
 * A command runs in the account's login shell, as `ssh host command` runs
 * it, when that shell is a POSIX shell: the program is the command line, one
 * process and nothing on stdin (a second shell reading its program from a
 * pipe a byte at a time cost about 1 ms of CPU per command). Otherwise, and
 * for scripts, /bin/sh reads the program from stdin. The command line carries
 * the user's command as written, nothing else (see commandLineOk).
 */
export function launchOf(program: RemoteProgram, loginShell: string | undefined): Launch {
  const posixLogin = loginShell !== undefined && POSIX_LOGIN_SHELLS.has(basename(loginShell));
  if (program.commandLineOk && posixLogin && Buffer.byteLength(program.text) <= COMMAND_LINE_MAX_BYTES) return { commandLine: program.text, stdin: '' };
  return { commandLine: REMOTE_COMMAND, stdin: program.text };
}

// How each interpreter reads a program from stdin.
const STDIN_FLAG: Record<string, string> = { sh: '-s', bash: '-s', dash: '-s', zsh: '-s', ksh: '-s', mksh: '-s', ash: '-s', python: '-', python3: '-', perl: '-', ruby: '-', node: '-' };

export function buildProgram(work: Work, env: Record<string, string> = {}): RemoteProgram {
  // 122 random bits from Node's buffered entropy: randomBytes() asked OpenSSL every time (2 % of the executor's CPU).
  const nonce = randomUUID().replaceAll('-', '');
  const marker = `\x1eRUNNERHUB-${nonce}:`;
  const lines = [`printf '%s%s\\n' '${marker}' "$$"`];
  for (const [name, value] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw invalid(`environment variable name "${name}" is not a shell name`, 'env');
    lines.push(`export ${name}=${singleQuoted(value, 'env')}`);
  }
  if ('command' in work) {
    if (work.command.trim() === '') throw invalid('the command is empty', 'command');
    rejectNul(work.command, 'command');
    lines.push(work.command);
  } else {
    rejectNul(work.script, 'script');
    const shell = work.shell ?? '/bin/bash';
    const flag = STDIN_FLAG[basename(shell)];
    if (!flag || !/^(\/[A-Za-z0-9._+-]+)+$|^[A-Za-z0-9._+-]+$/.test(shell)) {
      throw invalid(`shell "${shell}" is not supported: use one of ${Object.keys(STDIN_FLAG).join(', ')} (a name or an absolute path)`, 'shell');
    }
    // A quoted here-document is passed on byte for byte; its end line cannot occur in the script.
    const end = `RUNNERHUB_END_${nonce}`;
    if (work.script.split('\n').includes(end)) throw invalid('the script contains the end marker', 'script');
    const body = work.script.endsWith('\n') ? work.script : `${work.script}\n`;
    lines.push(`exec ${shell} ${flag} <<'${end}'\n${body}${end}`);
  }
  return { text: `${lines.join('\n')}\n`, marker, commandLineOk: 'command' in work && Object.keys(env).length === 0 };
}

/**
 * Signals a process group: TERM, then KILL after the grace period, and
 * checks that no process of it is left. Exits 0 when TERM sufficed, 2 when
 * KILL was needed, 1 when something survived. Zombies do not count: where
 * PID 1 does not reap orphans (containers without an init) they linger.
 */
export function killProgram(pgid: number, graceMs: number): string {
  if (!Number.isSafeInteger(pgid) || pgid <= 1) throw invalid(`${pgid} is not a process group`, 'pgid');
  const ticks = Math.max(1, Math.ceil(graceMs / 100));
  return `g=${pgid}
alive() {
  if [ -r /proc/self/stat ]; then
    for f in /proc/[0-9]*/stat; do
      read -r s < "$f" 2>/dev/null || continue
      set -- \${s##*") "}
      [ "$3" = "$g" ] && [ "$1" != Z ] && return 0
    done
    return 1
  fi
  kill -0 -"$g" 2>/dev/null
}
kill -TERM -"$g" 2>/dev/null
i=0
while alive; do
  [ "$i" -eq ${ticks} ] && kill -KILL -"$g" 2>/dev/null
  [ "$i" -ge ${2 * ticks} ] && exit 1
  i=$((i + 1))
  sleep 0.1
done
[ "$i" -gt ${ticks} ] && exit 2
exit 0
`;
}

function singleQuoted(value: string, field: string): string {
  rejectNul(value, field);
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function rejectNul(value: string, field: string): void {
  if (value.includes('\0')) throw invalid(`${field} contains a NUL byte`, field);
}

function invalid(message: string, field: string): SshError {
  return new SshError('INVALID_REQUEST', message, field);
}
