import { isSpanContextValid, trace } from '@opentelemetry/api';
import pino from 'pino';
import { createLineRedactor } from './redact.js';

export type { Logger } from 'pino';

// Field names that hold credentials anywhere in the platform's payloads
// (SSH passwords and keys, runner and OAuth tokens, JWT and webhook secrets).
const SECRET_FIELDS = [
  'password',
  'passphrase',
  'token',
  'access_token',
  'accessToken',
  'refresh_token',
  'refreshToken',
  'github_runner_token',
  'encoded_jit_config',
  'authorization',
  'cookie',
  'private_key',
  'privateKey',
  'ssh_key',
  'sshKey',
  'secret',
  'client_secret',
  'clientSecret',
  'pem',
  'api_key',
  'apiKey',
];

// Wildcards reach one and two levels down: `*.*.authorization` covers `req.headers.authorization`.
export const DEFAULT_REDACT_PATHS: string[] = SECRET_FIELDS.flatMap((field) => [field, `*.${field}`, `*.*.${field}`]);

export interface LoggerOptions {
  service: string;
  level?: string;
  redactPaths?: string[];
  destination?: pino.DestinationStream;
}

export function createLogger(opts: LoggerOptions): pino.Logger {
  const options: pino.LoggerOptions = {
    level: opts.level ?? 'info',
    base: { service: opts.service },
    hooks: { streamWrite: createLineRedactor(opts.redactPaths ?? DEFAULT_REDACT_PATHS, '[REDACTED]') },
    // pino merges the log call's fields into the returned object, so it must be a fresh one.
    mixin() {
      const ctx = trace.getActiveSpan()?.spanContext();
      return ctx && isSpanContextValid(ctx) ? { trace_id: ctx.traceId, span_id: ctx.spanId } : {};
    },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
