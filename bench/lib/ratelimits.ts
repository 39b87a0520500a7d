import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, SERVICE_NAMES, type ServiceName } from '@runnerhub/stack';

/** A very high limit: far above anything the benchmark can send. */
const RAISED = '1000000000';

interface ZodLike {
  safeParse(value: unknown): { success: boolean; data?: unknown };
}

const isZod = (value: unknown): value is ZodLike => typeof (value as ZodLike | undefined)?.safeParse === 'function';

type Kind = 'switch' | 'count' | 'other';

function kindOf(name: string, fallback: unknown): Kind {
  if (typeof fallback === 'boolean' || /_(ENABLED?|DISABLED?|ON|OFF)$/.test(name)) return 'switch';
  if (/WINDOW|INTERVAL|_MS$|_SECONDS?$|_S$|TTL|DURATION|PERIOD|BLOCK|BAN|REDIS|URL|PREFIX/.test(name)) return 'other';
  return typeof fallback === 'number' || fallback === undefined ? 'count' : 'other';
}

/**
 * The environment that raises one service's rate limits. Counts go to 10^9
 * and the limiter stays on, so that its cost (a Redis round trip) is part of
 * what is measured; only a service whose limits have no count to raise gets
 * its switch turned off. Windows, durations, prefixes stay as they are.
 */
export function raiseLimits(settings: Record<string, ZodLike>): { env: Record<string, string>; notes: string[] } {
  const env: Record<string, string> = {};
  const notes: string[] = [];
  const entries = Object.entries(settings).map(([name, schema]) => ({ name, schema, fallback: schema.safeParse(undefined).data }));
  for (const { name, schema, fallback } of entries) {
    if (kindOf(name, fallback) !== 'count') continue;
    if (schema.safeParse(RAISED).success) {
      env[name] = RAISED;
      notes.push(`${name}=${RAISED} (default ${String(fallback)})`);
    }
  }
  const raisedAny = Object.keys(env).length > 0;
  for (const { name, schema, fallback } of entries) {
    const kind = kindOf(name, fallback);
    if (kind === 'switch' && !raisedAny) {
      const off = /DISABLE|_OFF$/.test(name) ? 'true' : 'false';
      if (schema.safeParse(off).success) {
        env[name] = off;
        notes.push(`${name}=${off}: nothing to raise, so the limiter is off (default ${String(fallback)})`);
        continue;
      }
    }
    if (!(name in env)) notes.push(`${name} left at its default (${String(fallback)})`);
  }
  return { env, notes };
}

export interface RateLimitOverrides {
  /** The environment to add per service. */
  env: Partial<Record<ServiceName, Record<string, string>>>;
  /** Every rate-limit setting each service declares, raised or not, with its default. */
  declared: Partial<Record<ServiceName, Record<string, string>>>;
  /** One line per setting: what was done with it. */
  notes: string[];
}

/**
 * Finds every rate-limit setting that a service declares in its environment
 * schema (services/<name>/dist/config.js) and returns the environment that
 * raises it (see raiseLimits), so that the benchmark says what it changed
 * instead of measuring 429s.
 */
export async function rateLimitOverrides(): Promise<RateLimitOverrides> {
  const env: Partial<Record<ServiceName, Record<string, string>>> = {};
  const declared: Partial<Record<ServiceName, Record<string, string>>> = {};
  const notes: string[] = [];
  for (const service of SERVICE_NAMES) {
    const file = join(REPO_ROOT, 'services', service, 'dist', 'config.js');
    if (!existsSync(file)) continue;
    let exports: Record<string, unknown>;
    try {
      exports = await import(pathToFileURL(file).href);
    } catch (error) {
      notes.push(`could not inspect ${service}'s configuration for rate limits: ${(error as Error).message}`);
      continue;
    }
    const settings: Record<string, ZodLike> = {};
    for (const shape of Object.values(exports)) {
      if (!shape || typeof shape !== 'object') continue;
      for (const [name, schema] of Object.entries(shape as Record<string, unknown>)) {
        if (isZod(schema) && /RATE_?LIMIT|THROTTL/i.test(name)) settings[name] = schema;
      }
    }
    if (Object.keys(settings).length > 0) {
      declared[service] = Object.fromEntries(Object.entries(settings).map(([name, schema]) => [name, String(schema.safeParse(undefined).data)]));
    }
    const raised = raiseLimits(settings);
    if (Object.keys(raised.env).length > 0) env[service] = raised.env;
    notes.push(...raised.notes.map((note) => `${service}: ${note}`));
  }
  return { env, declared, notes };
}

/** Rate-limit headers on a response (IETF draft and the common X- forms). */
export function rateLimitHeaders(headers: Headers): string[] {
  const found: string[] = [];
  headers.forEach((value, name) => {
    if (/^(x-)?ratelimit|^retry-after$/i.test(name)) found.push(`${name}: ${value}`);
  });
  return found;
}
