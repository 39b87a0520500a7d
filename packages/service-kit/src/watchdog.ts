import { Worker } from 'node:worker_threads';

export interface WatchdogOptions {
  /** The main thread not running for this long ends the process. */
  stallMs: number;
  /** Named in the line written before the process ends. */
  service: string;
}

// Runs on a thread of its own, which goes on when the main one stops. It
// writes with writeSync: a worker's process.stderr goes through the main thread.
const WATCHER = `
const { writeSync } = require('node:fs');
const { workerData } = require('node:worker_threads');
const { beats, stallMs, checkMs, service } = workerData;
let seen = Atomics.load(beats, 0);
let since = Date.now();
setInterval(() => {
  const now = Atomics.load(beats, 0);
  if (now !== seen) {
    seen = now;
    since = Date.now();
  } else if (Date.now() - since >= stallMs) {
    writeSync(2, service + ': the main thread has not run for ' + (Date.now() - since) + ' ms (a deadlock or an endless loop); ending the process for its supervisor to restart it\\n');
    process.kill(process.pid, 'SIGKILL');
  }
}, checkMs);
`;

/**
 * Ends the process when its main thread has stopped running: a service
 * stuck that way (a Node 20 crypto deadlock stopped inventory so) keeps its
 * bus subscriptions and answers nothing, which is worse than a crash, since a
 * supervisor (compose's restart policy) restarts a process that ended. The
 * main thread counts beats into shared memory; a worker thread checks them.
 */
export function startWatchdog({ stallMs, service }: WatchdogOptions): void {
  const checkMs = Math.max(10, Math.floor(stallMs / 10));
  const beats = new Int32Array(new SharedArrayBuffer(4));
  setInterval(() => Atomics.add(beats, 0, 1), checkMs).unref();
  const worker = new Worker(WATCHER, { eval: true, workerData: { beats, stallMs, checkMs, service } });
  worker.unref();
}
