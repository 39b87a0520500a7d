import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type * as EngineGlue from '@prisma/schema-engine-wasm/schema_engine_bg';

export type { SchemaEngine } from '@prisma/schema-engine-wasm/schema_engine_bg';

/** The engine's exports; the glue reaches all but the start hook itself. */
interface EngineExports {
  __wbindgen_start(): void;
}

/** The part of the WebAssembly global used here (this project's TS libs do not declare it). */
interface WebAssemblyApi {
  compile(bytes: Uint8Array): Promise<object>;
  instantiate(module: object, imports: Record<string, object>): Promise<{ exports: EngineExports }>;
}

const { WebAssembly } = globalThis as unknown as { WebAssembly: WebAssemblyApi };

let loading: Promise<typeof EngineGlue> | undefined;

/**
 * Node 20 cannot `import` a .wasm file, so the package's own entry point fails:
 * instantiate the module ourselves and hand its exports to the JS glue. The glue
 * keeps the instance in module state, so this happens once per process.
 */
export function loadEngineGlue(): Promise<typeof EngineGlue> {
  loading ??= instantiate().catch((error: unknown) => {
    loading = undefined;
    throw error;
  });
  return loading;
}

async function instantiate(): Promise<typeof EngineGlue> {
  const gluePath = createRequire(import.meta.url).resolve('@prisma/schema-engine-wasm/schema_engine_bg');
  const glue = await import('@prisma/schema-engine-wasm/schema_engine_bg');
  const module = await WebAssembly.compile(await readFile(gluePath.replace(/\.js$/, '.wasm')));
  const instance = await WebAssembly.instantiate(module, { './schema_engine_bg.js': withUnrefTimers(glue) });
  glue.__wbg_set_wasm(instance.exports);
  instance.exports.__wbindgen_start();
  return glue;
}

/**
 * The engine arms a 10 s timer around its migration lock and leaves it running
 * once the lock is taken, which would hold the process open for 10 s after every
 * command. Unref the engine's timers; they still fire while the process lives.
 */
function withUnrefTimers(glue: typeof EngineGlue): Record<string, unknown> {
  const imports: Record<string, unknown> = { ...glue };
  for (const [name, value] of Object.entries(glue)) {
    if (name.startsWith('__wbg_setTimeout_') && typeof value === 'function') {
      imports[name] = (...args: unknown[]) => {
        const timer = (value as (...args: unknown[]) => unknown)(...args);
        (timer as { unref?: () => void }).unref?.();
        return timer;
      };
    }
  }
  return imports;
}
