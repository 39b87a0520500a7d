import { fork, type ChildProcess } from 'node:child_process';
import { dirname } from 'node:path';
import { onCleanup } from './lifecycle.js';

export interface HttpResponse {
  status: number;
  text: string;
  headers: Headers;
}

/** One bounded request (15 s) with an optional JSON body and bearer token. */
export async function http(method: string, url: string, options: { body?: unknown; token?: string } = {}): Promise<HttpResponse> {
  const headers: Record<string, string> = {};
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(url, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

export async function expectOk(what: string, response: Promise<HttpResponse>): Promise<HttpResponse> {
  const result = await response;
  if (result.status < 200 || result.status >= 300) throw new Error(`${what}: HTTP ${result.status}: ${result.text.slice(0, 500)}`);
  return result;
}

/**
 * Forks one of the benchmark's servers (plain JavaScript, no loader), sends
 * it `message` and resolves with its first reply: `{ port, ... }` once it
 * listens, or a rejection when it replies `{ error }`, exits or takes more
 * than 30 s. The server is stopped by the cleanup (or by the function returned).
 */
export async function forkServer<Reply extends { port: number }>(
  file: string,
  label: string,
  message: unknown,
): Promise<{ child: ChildProcess; reply: Reply; stop: () => Promise<void> }> {
  const child = fork(file, [], {
    cwd: dirname(file),
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const stop = onCleanup(`stop the ${label}`, () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
      child.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      child.kill('SIGTERM');
    }),
  );
  const reply = await new Promise<Reply>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the ${label} did not start within 30 s`)), 30_000);
    child.once('message', (answer: Reply | { error: string }) => {
      clearTimeout(timer);
      if ('error' in answer) reject(new Error(`the ${label} could not start: ${answer.error}`));
      else resolve(answer);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the ${label} exited during start (code ${code})`));
    });
    child.send(message as never);
  }).catch(async (error: Error) => {
    await stop();
    throw error;
  });
  return { child, reply, stop };
}
