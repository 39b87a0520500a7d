import { buildProgram, killProgram, launchOf, REMOTE_COMMAND } from './remote-program.js';

test('a process group of 0 or 1 is never signalled: kill -1 would hit every process of the user', () => {
  for (const pgid of [0, 1, -5, Number.NaN, 1.5]) expect(() => killProgram(pgid, 1_000)).toThrow(/is not a process group/);
  expect(killProgram(4242, 1_000)).toContain('kill -TERM -"$g"');
});

test('the command, script and environment go into the stdin program, each with a fresh marker', () => {
  const first = buildProgram({ script: 'echo "$X"', shell: 'bash' }, { X: "it's" });
  const second = buildProgram({ command: 'true' });
  expect(first.marker).not.toBe(second.marker);
  expect(first.text).toContain(`export X='it'\\''s'\n`);
  expect(first.text).toMatch(/exec bash -s <<'RUNNERHUB_END_[0-9a-f]+'\necho "\$X"\nRUNNERHUB_END_[0-9a-f]+\n$/);
  expect(buildProgram({ script: 'print 1', shell: '/usr/bin/python3' }).text).toContain('exec /usr/bin/python3 - <<');
});

test('a command without environment is the command line on a POSIX login shell; scripts, environment, other shells and long commands go over stdin', () => {
  const command = buildProgram({ command: 'echo hi' });
  for (const shell of ['/bin/sh', '/bin/bash', '/usr/bin/zsh', '/bin/dash']) expect(launchOf(command, shell)).toEqual({ commandLine: command.text, stdin: '' });
  const overStdin = (program: ReturnType<typeof buildProgram>, shell: string | undefined) => expect(launchOf(program, shell)).toEqual({ commandLine: REMOTE_COMMAND, stdin: program.text });
  overStdin(command, '/usr/bin/fish');
  overStdin(command, '/bin/tcsh');
  overStdin(command, undefined);
  overStdin(buildProgram({ command: 'echo hi' }, { TOKEN: 'secret' }), '/bin/sh');
  overStdin(buildProgram({ script: 'echo hi', shell: 'sh' }), '/bin/sh');
  overStdin(buildProgram({ command: `echo ${'x'.repeat(70_000)}` }), '/bin/sh');
});
