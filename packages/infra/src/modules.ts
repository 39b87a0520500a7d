import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

/**
 * Writes a TypeScript module as JavaScript that plain `node` runs, for tests
 * that need a child process (one they can kill) to run our code. The module
 * may import only Node's own modules: nothing else is compiled with it.
 */
export async function writeNodeModule(sourcePath: string | URL, outPath: string): Promise<void> {
  const { transformSync } = await import('@swc/core');
  const { code } = transformSync(readFileSync(sourcePath, 'utf8'), { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } });
  writeFileSync(outPath, code);
}

export interface NodeScriptResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** It was still running after timeoutMs and was killed. */
  timedOut: boolean;
}

/** Runs a script with this Node in a process of its own; one still running after timeoutMs is killed. */
export function runNodeScript(scriptPath: string, timeoutMs: number): Promise<NodeScriptResult> {
  const child = spawn(process.execPath, [scriptPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const result: NodeScriptResult = { code: null, signal: null, stdout: '', stderr: '', timedOut: false };
  child.stdout.on('data', (data: Buffer) => (result.stdout += data.toString()));
  child.stderr.on('data', (data: Buffer) => (result.stderr += data.toString()));
  const timer = setTimeout(() => {
    result.timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  return new Promise((resolve) =>
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ ...result, code, signal });
    }),
  );
}
