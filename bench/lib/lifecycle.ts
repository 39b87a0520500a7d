import { progress } from './report.js';

/**
 * Everything the benchmark starts is registered here and undone in reverse
 * order, once, on success, failure, Ctrl-C or the watchdog. A step can also
 * be run early (a platform that is no longer needed); it then runs only once.
 */
interface Step {
  what: string;
  run: () => Promise<void> | void;
  done?: Promise<void>;
}

const steps: Step[] = [];
let cleaning: Promise<void> | undefined;

/** Set once a signal or the watchdog asked the benchmark to stop. */
export const lifecycle = { interrupted: false };

/** Throws once the benchmark has been asked to stop, so that no further measurement starts. */
export function checkInterrupted(): void {
  if (lifecycle.interrupted) throw new Error('interrupted');
}

function runStep(step: Step): Promise<void> {
  step.done ??= (async () => {
    try {
      await step.run();
    } catch (error) {
      progress(`cleanup: ${step.what} failed: ${(error as Error).message}`);
    }
  })();
  return step.done;
}

/** Registers an undo step; the function returned runs it now (and only once). */
export function onCleanup(what: string, run: () => Promise<void> | void): () => Promise<void> {
  const step: Step = { what, run };
  steps.push(step);
  return () => runStep(step);
}

/** Runs every registered step, latest first; later calls return the same promise. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const step of [...steps].reverse()) await runStep(step);
  })();
  return cleaning;
}
