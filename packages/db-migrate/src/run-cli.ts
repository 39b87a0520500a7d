import { parseArgs } from 'node:util';
import { MigrateError } from './errors.js';
import { checkSchemaMatchesMigrations, createMigration, deployMigrations, migrationStatus, type MigrateOptions } from './migrate.js';

export const USAGE =
  'usage: rh-db deploy|dev|status|check --schema <path> [--name <name>] [--url <url>] [--accept-data-loss] [--timeout-ms <ms>]';

export interface CliIo {
  env: Record<string, string | undefined>;
  stdout(text: string): void;
  stderr(text: string): void;
}

interface Invocation {
  command: Command;
  options: MigrateOptions;
  name: string | undefined;
  acceptDataLoss: boolean;
}

type Command = keyof typeof COMMANDS;

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

const COMMANDS = {
  async deploy({ options }: Invocation, io: CliIo): Promise<number> {
    const applied = await deployMigrations(options);
    io.stdout(applied.length === 0 ? 'No pending migrations to apply.\n' : `Applied ${applied.length} migration(s): ${applied.join(', ')}\n`);
    return 0;
  },

  async dev({ options, name, acceptDataLoss }: Invocation, io: CliIo): Promise<number> {
    if (name === undefined) throw new MigrateError('invalid-argument', 'dev needs --name <name> for the new migration');
    const result = await createMigration({ ...options, name, acceptDataLoss });
    if (result.appliedBefore.length > 0) io.stdout(`Applied pending migration(s): ${result.appliedBefore.join(', ')}\n`);
    io.stdout(
      result.migrationFile === null
        ? 'The migrations already match the schema; no migration created.\n'
        : `Created and applied ${result.migrationFile}\n`,
    );
    return 0;
  },

  async status({ options }: Invocation, io: CliIo): Promise<number> {
    const status = await migrationStatus(options);
    const problems = [
      ['Not yet applied', status.pending],
      ['Failed', status.failed],
      ['Edited after being applied', status.edited],
      ['Applied but missing from the migrations folder', status.missingFromFolder],
    ] as const;
    io.stdout(`${status.migrations.length} migration(s) in the migrations folder.\n`);
    const reported = problems.filter(([, names]) => names.length > 0);
    for (const [label, names] of reported) io.stdout(`${label}: ${names.join(', ')}\n`);
    if (reported.length > 0) return EXIT_FAILED;
    io.stdout('The database is up to date.\n');
    return 0;
  },

  async check({ options }: Invocation, io: CliIo): Promise<number> {
    const check = await checkSchemaMatchesMigrations(options);
    if (check.inSync) {
      io.stdout('The schema and the migrations are in sync.\n');
      return 0;
    }
    io.stderr('rh-db check: the schema has changes that no migration contains (create one with rh-db dev); missing SQL:\n');
    io.stdout(check.missingSql ?? '');
    return EXIT_FAILED;
  },
};

/** Runs one rh-db command and returns its exit code. */
export async function runCli(args: string[], io: CliIo): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseInvocation(args, io.env);
  } catch (error) {
    io.stderr(`rh-db: ${oneLine(error)}\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  try {
    return await COMMANDS[invocation.command](invocation, io);
  } catch (error) {
    io.stderr(`rh-db ${invocation.command}: ${oneLine(error)}\n`);
    return error instanceof MigrateError && error.code === 'invalid-argument' ? EXIT_USAGE : EXIT_FAILED;
  }
}

function parseInvocation(args: string[], env: CliIo['env']): Invocation {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      schema: { type: 'string' },
      name: { type: 'string' },
      url: { type: 'string' },
      'accept-data-loss': { type: 'boolean', default: false },
      'timeout-ms': { type: 'string' },
    },
  });
  const [command, ...extra] = positionals;
  if (command === undefined || !Object.hasOwn(COMMANDS, command)) throw new Error(`unknown command "${command ?? ''}"`);
  if (extra.length > 0) throw new Error(`unexpected argument "${extra.join(' ')}"`);
  if (values.schema === undefined) throw new Error('missing --schema <path>');
  const databaseUrl = values.url ?? env.DATABASE_URL;
  if (!databaseUrl) throw new Error('no database URL: pass --url or set DATABASE_URL');
  return {
    command: command as Command,
    options: { schemaPath: values.schema, databaseUrl, timeoutMs: parseTimeout(values['timeout-ms']) },
    name: values.name,
    acceptDataLoss: values['accept-data-loss'],
  };
}

function parseTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const timeoutMs = Number(value);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new Error(`--timeout-ms must be a positive integer, got "${value}"`);
  return timeoutMs;
}

/**
 * Engine messages span several lines and may end in a Rust span trace and a
 * schema code frame: keep the text, drop the trace and the frame.
 */
export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const lines = text.split('\n');
  const traceStart = lines.findIndex((line) => /^\s+\d+: \S+::/.test(line));
  return (traceStart === -1 ? lines : lines.slice(0, traceStart))
    .filter((line) => !/^\s*(\d+\s*)?\|/.test(line))
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join(' ');
}
