import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, type ServiceName } from '@runnerhub/stack';

interface ZodLike {
  safeParse(value: unknown): { success: boolean; data?: unknown };
}

export interface Setting {
  /** What the service runs with: the variable from this environment (the stack passes it on), else the default. */
  value: unknown;
  defaultValue: unknown;
  /** True when the value comes from this process's environment rather than the default. */
  fromEnv: boolean;
}

/**
 * Settings of a service as its environment schema (services/<name>/dist/config.js)
 * parses them, from this process's environment: the platform the benchmark
 * starts inherits it. Empty values count as unset, as in @runnerhub/config.
 */
export async function serviceSettings(service: ServiceName, names: string[], overrides: Record<string, string> = {}): Promise<Record<string, Setting>> {
  const file = join(REPO_ROOT, 'services', service, 'dist', 'config.js');
  if (!existsSync(file)) throw new Error(`${file} is missing: build first`);
  const exports = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const schemas = new Map<string, ZodLike>();
  for (const shape of Object.values(exports)) {
    if (!shape || typeof shape !== 'object') continue;
    for (const [name, schema] of Object.entries(shape as Record<string, unknown>)) {
      if (typeof (schema as ZodLike | undefined)?.safeParse === 'function') schemas.set(name, schema as ZodLike);
    }
  }
  const settings: Record<string, Setting> = {};
  for (const name of names) {
    const schema = schemas.get(name);
    if (!schema) throw new Error(`${service} declares no setting ${name} in ${file}`);
    const raw = overrides[name] ?? (process.env[name] || undefined);
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw new Error(`${name}=${JSON.stringify(raw)} is not a valid value for ${service}`);
    settings[name] = { value: parsed.data, defaultValue: schema.safeParse(undefined).data, fromEnv: raw !== undefined };
  }
  return settings;
}
