import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { HistoryDiagnostic, MigrationList, SchemaEngine, SchemaFilter, SchemasContainer } from '@prisma/schema-engine-wasm/schema_engine_bg';
import { openMigrationDatabase } from './database.js';
import { loadEngineGlue } from './engine.js';
import { MigrateError } from './errors.js';
import { migrationsFolderOf, readMigrationsList, writeMigration } from './migrations-folder.js';

export interface MigrateOptions {
  /** The Prisma schema file; its migrations are in `migrations/` beside it. */
  schemaPath: string;
  databaseUrl: string;
  /** Receives the engine's log lines and cleanup problems. */
  log?: (line: string) => void;
  /** Limit for connecting and for each statement, in milliseconds (default 60 s). */
  timeoutMs?: number;
}

export interface CreateMigrationOptions extends MigrateOptions {
  name: string;
  acceptDataLoss?: boolean;
}

export interface CreateMigrationResult {
  /** Pending migrations applied before the new one was generated. */
  appliedBefore: string[];
  /** The new migration's directory name; null when the schema needed no change. */
  migrationName: string | null;
  migrationFile: string | null;
}

export interface MigrationStatus {
  /** Migration directory names in the migrations folder, in order. */
  migrations: string[];
  hasMigrationsTable: boolean;
  /** How the database history relates to the folder; null when they agree. */
  history: HistoryDiagnostic | null;
  /** In the folder, not applied yet. */
  pending: string[];
  failed: string[];
  /** Applied, then changed in the folder. */
  edited: string[];
  /** Applied, but absent from the folder. */
  missingFromFolder: string[];
}

export interface SchemaCheck {
  inSync: boolean;
  /** SQL that would bring the migrations up to the schema, when they are out of sync. */
  missingSql?: string;
}

interface Session {
  engine: SchemaEngine;
  schema: SchemasContainer;
  migrationsFolder: string;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const FILTERS: SchemaFilter = { externalTables: [], externalEnums: [] };
const DIFF_HAS_CHANGES = 2;

/** `prisma migrate deploy`: applies pending migrations, returns their names. */
export async function deployMigrations(options: MigrateOptions): Promise<string[]> {
  return withEngine(options, async ({ engine, migrationsFolder }) => {
    const migrationsList = await readMigrationsList(migrationsFolder);
    const { appliedMigrationNames } = await engine.applyMigrations({ migrationsList, filters: FILTERS });
    return appliedMigrationNames;
  });
}

/**
 * `prisma migrate dev` without prompts: refuses on drift, on steps that cannot
 * run on the current data and, unless accepted, on data loss; otherwise writes
 * the new migration beside the schema and applies it.
 */
export async function createMigration(options: CreateMigrationOptions): Promise<CreateMigrationResult> {
  const migrationName = normaliseName(options.name);
  return withEngine(options, async ({ engine, schema, migrationsFolder }) => {
    const migrationsList = await readMigrationsList(migrationsFolder);
    await refuseDrift(engine, migrationsList);
    const { appliedMigrationNames: appliedBefore } = await engine.applyMigrations({ migrationsList, filters: FILTERS });
    // evaluateDataLoss and createMigration rely on state that devDiagnostic
    // prepares and that applying migrations discards; without it they fail with
    // "shadow DB must be provided through an external factory".
    await refuseDrift(engine, migrationsList);

    const dataLoss = await engine.evaluateDataLoss({ migrationsList, schema, filters: FILTERS });
    if (dataLoss.unexecutableSteps.length > 0) {
      throw new MigrateError('unexecutable-steps', `the migration cannot run on the current data: ${messages(dataLoss.unexecutableSteps)}`);
    }
    if (dataLoss.warnings.length > 0 && !options.acceptDataLoss) {
      throw new MigrateError('data-loss', `the migration would lose data (accept it explicitly to proceed): ${messages(dataLoss.warnings)}`);
    }

    const created = await engine.createMigration({ draft: false, migrationName, migrationsList, schema, filters: FILTERS });
    if (created.migrationScript === null) return { appliedBefore, migrationName: null, migrationFile: null };
    const migrationFile = await writeMigration(migrationsFolder, {
      name: created.generatedMigrationName,
      script: created.migrationScript,
      extension: created.extension,
      provider: created.connectorType,
    });
    await engine.applyMigrations({ migrationsList: await readMigrationsList(migrationsFolder), filters: FILTERS });
    return { appliedBefore, migrationName: created.generatedMigrationName, migrationFile };
  });
}

/** `prisma migrate status`: the database's migration history against the folder. */
export async function migrationStatus(options: MigrateOptions): Promise<MigrationStatus> {
  return withEngine(options, async ({ engine, migrationsFolder }) => {
    const migrationsList = await readMigrationsList(migrationsFolder);
    const diagnosis = await engine.diagnoseMigrationHistory({ migrationsList, optInToShadowDatabase: false, filters: FILTERS });
    const history = diagnosis.history;
    return {
      migrations: migrationsList.migrationDirectories.map((directory) => directory.path),
      hasMigrationsTable: diagnosis.hasMigrationsTable,
      history,
      pending: history && history.diagnostic !== 'migrationsDirectoryIsBehind' ? history.unappliedMigrationNames : [],
      failed: diagnosis.failedMigrationNames,
      edited: diagnosis.editedMigrationNames,
      missingFromFolder: history && history.diagnostic !== 'databaseIsBehind' ? history.unpersistedMigrationNames : [],
    };
  });
}

/**
 * Replays the migrations on a shadow database and compares the result with the
 * schema: out of sync means someone changed the schema without a migration.
 */
export async function checkSchemaMatchesMigrations(options: MigrateOptions): Promise<SchemaCheck> {
  return withEngine(options, async ({ engine, schema, migrationsFolder }) => {
    const migrationsList = await readMigrationsList(migrationsFolder);
    const result = await engine.diff({
      from: { tag: 'migrations', ...migrationsList },
      to: { tag: 'schemaDatamodel', ...schema },
      script: true,
      exitCode: true,
      filters: FILTERS,
    });
    if (result.exitCode === DIFF_HAS_CHANGES) return { inSync: false, missingSql: result.stdout ?? '' };
    return { inSync: true };
  });
}

async function refuseDrift(engine: SchemaEngine, migrationsList: MigrationList): Promise<void> {
  const { action } = await engine.devDiagnostic({ migrationsList, filters: FILTERS });
  if (action.tag === 'reset') {
    throw new MigrateError('drift', `the database has drifted from the migration history: ${action.reason}`);
  }
}

async function withEngine<T>(options: MigrateOptions, run: (session: Session) => Promise<T>): Promise<T> {
  if (!/^postgres(ql)?:\/\//.test(options.databaseUrl)) {
    throw new MigrateError('invalid-argument', 'the database URL must be a postgresql:// URL');
  }
  const schemaPath = resolve(options.schemaPath);
  const content = await readSchema(schemaPath);
  const log = (line: string) => options.log?.(line.trimEnd());
  const glue = await loadEngineGlue();
  const database = openMigrationDatabase(options.databaseUrl, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, log);
  let engine: SchemaEngine | undefined;
  try {
    engine = await glue.SchemaEngine.new({ datamodels: [[schemaPath, content]] }, log, database.factory);
    return await run({ engine, schema: { files: [{ path: schemaPath, content }] }, migrationsFolder: migrationsFolderOf(schemaPath) });
  } catch (error) {
    throw database.explain(error);
  } finally {
    engine?.free();
    await database.close();
  }
}

async function readSchema(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new MigrateError('invalid-argument', `schema file not found: ${path}`);
    throw error;
  }
}

function normaliseName(name: string): string {
  const normalised = name.trim().toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
  if (normalised === '') throw new MigrateError('invalid-argument', `invalid migration name "${name}": use letters, digits and underscores`);
  return normalised;
}

function messages(feedback: { message: string }[]): string {
  return feedback.map((item) => item.message).join('; ');
}
