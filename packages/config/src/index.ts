import { z } from 'zod';

/** A configuration value that cannot be used; its message names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type EnvShape = Record<string, z.ZodType>;
export type ConfigOf<S extends EnvShape> = { readonly [K in keyof S]: z.output<S[K]> };

/**
 * Parses the environment once into a typed, frozen object. Keys are the
 * variable names, so `config.NATS_URL` reads exactly like the documentation.
 * Empty strings count as unset so that `VAR=` falls back to the default.
 */
export function parseConfig<S extends EnvShape>(shape: S, env: NodeJS.ProcessEnv = process.env): ConfigOf<S> {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(shape)) {
    const value = env[key];
    input[key] = value === '' ? undefined : value;
  }
  const result = z.object(shape).safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '?');
      const got = input[name];
      return `${name}: ${issue.message}${got === undefined ? '' : ` (got ${JSON.stringify(got)})`}`;
    });
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  return Object.freeze(result.data) as ConfigOf<S>;
}

/** Rows for the README's configuration table: name, default, description. */
export function describeConfig(shape: EnvShape): Array<{ name: string; defaultValue: string; description: string }> {
  return Object.entries(shape).map(([name, schema]) => {
    const parsed = schema.safeParse(undefined);
    return {
      name,
      defaultValue: parsed.success && parsed.data !== undefined ? String(parsed.data) : '',
      description: schema.description ?? '',
    };
  });
}

/** Helpers for the value kinds every service uses. */
export const env = {
  string: (description: string, fallback?: string) =>
    (fallback === undefined ? z.string().min(1) : z.string().min(1).default(fallback)).describe(description),
  optionalString: (description: string) => z.string().min(1).optional().describe(description),
  url: (description: string, fallback?: string) =>
    (fallback === undefined ? z.url() : z.url().default(fallback)).describe(description),
  optionalUrl: (description: string) => z.url().optional().describe(description),
  port: (description: string, fallback: number) =>
    z.coerce.number().int().min(0).max(65535).default(fallback).describe(description),
  int: (description: string, fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback).describe(description),
  bool: (description: string, fallback: boolean) =>
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'])
      .transform((v) => v === 'true' || v === '1' || v === 'yes')
      .prefault(fallback ? 'true' : 'false')
      .describe(description),
  enumOf: <const T extends readonly [string, ...string[]]>(values: T, description: string, fallback: T[number]) =>
    z.enum(values).default(fallback as never).describe(description),
};
