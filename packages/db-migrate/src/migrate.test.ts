import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startThrowawayPostgres, type ThrowawayPostgres } from '@runnerhub/infra';
import { checkSchemaMatchesMigrations, createMigration, deployMigrations, MigrateError, migrationStatus } from './index.js';

const identityPrisma = fileURLToPath(new URL('../../../services/identity/prisma', import.meta.url));
const identitySchema = join(identityPrisma, 'schema.prisma');
const identityMigrations = readdirSync(join(identityPrisma, 'migrations')).filter((name) => !name.endsWith('.toml'));

let postgres: ThrowawayPostgres;
let workDir: string;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'rh-db-migrate-'));
  postgres = await startThrowawayPostgres();
});

afterAll(async () => {
  await postgres?.dispose();
  rmSync(workDir, { recursive: true, force: true });
});

const freshDatabase = () => postgres.freshDatabase('db');

/** A writable copy of identity's prisma folder; returns the schema path. */
function copyOfIdentity(): string {
  const dir = mkdtempSync(join(workDir, 'identity-'));
  cpSync(identityPrisma, join(dir, 'prisma'), { recursive: true });
  return join(dir, 'prisma', 'schema.prisma');
}

function editSchema(schemaPath: string, edit: (schema: string) => string): void {
  writeFileSync(schemaPath, edit(readFileSync(schemaPath, 'utf8')));
}

async function query(databaseUrl: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

const widgetModel = '\nmodel Widget {\n  id   Int    @id @default(autoincrement())\n  name String\n\n  @@map("widgets")\n}\n';

test('deploy applies every pending migration and a second deploy applies nothing', async () => {
  const databaseUrl = await freshDatabase();

  expect(await deployMigrations({ schemaPath: identitySchema, databaseUrl })).toEqual(identityMigrations);
  expect(await deployMigrations({ schemaPath: identitySchema, databaseUrl })).toEqual([]);
  expect(await query(databaseUrl, `SELECT to_regclass('users') IS NOT NULL AS present`)).toEqual([{ present: true }]);
});

test('dev writes a migration for a schema change beside the schema and applies it', async () => {
  const schemaPath = copyOfIdentity();
  const databaseUrl = await freshDatabase();
  editSchema(schemaPath, (schema) => schema + widgetModel);

  const result = await createMigration({ schemaPath, databaseUrl, name: 'Add widgets' });

  expect(result.appliedBefore).toEqual(identityMigrations);
  expect(result.migrationName).toMatch(/^\d{14}_add_widgets$/);
  expect(result.migrationFile).toBe(join(schemaPath, '..', 'migrations', String(result.migrationName), 'migration.sql'));
  expect(readFileSync(String(result.migrationFile), 'utf8')).toContain('CREATE TABLE "widgets"');
  expect(readFileSync(join(schemaPath, '..', 'migrations', 'migration_lock.toml'), 'utf8')).toContain('provider = "postgresql"');
  expect(await query(databaseUrl, 'SELECT count(*)::int AS n FROM widgets')).toEqual([{ n: 0 }]);
  expect(await migrationStatus({ schemaPath, databaseUrl })).toMatchObject({ pending: [], edited: [], failed: [], history: null });
});

test('dev creates no migration when the schema already matches the migrations', async () => {
  const schemaPath = copyOfIdentity();

  const result = await createMigration({ schemaPath, databaseUrl: await freshDatabase(), name: 'nothing' });

  expect(result).toEqual({ appliedBefore: identityMigrations, migrationName: null, migrationFile: null });
});

test('dev refuses to drop a column that holds data unless data loss is accepted', async () => {
  const schemaPath = copyOfIdentity();
  const databaseUrl = await freshDatabase();
  await deployMigrations({ schemaPath, databaseUrl });
  await query(databaseUrl, `INSERT INTO users (id, username, updated_at) VALUES (gen_random_uuid(), 'ada', now())`);
  editSchema(schemaPath, (schema) => schema.replace(/^\s*fullName .*$/m, ''));

  await expect(createMigration({ schemaPath, databaseUrl, name: 'drop_full_name' })).rejects.toMatchObject({
    code: 'data-loss',
    message: expect.stringContaining('full_name'),
  });
  expect(readdirSync(join(schemaPath, '..', 'migrations'))).toHaveLength(identityMigrations.length + 1);

  const accepted = await createMigration({ schemaPath, databaseUrl, name: 'drop_full_name', acceptDataLoss: true });
  expect(accepted.migrationName).toMatch(/_drop_full_name$/);
});

test('dev refuses when the database has drifted from the migration history', async () => {
  const schemaPath = copyOfIdentity();
  const databaseUrl = await freshDatabase();
  await deployMigrations({ schemaPath, databaseUrl });
  await query(databaseUrl, 'ALTER TABLE users ADD COLUMN nickname text');
  editSchema(schemaPath, (schema) => schema + widgetModel);

  const refusal = createMigration({ schemaPath, databaseUrl, name: 'widgets' });

  await expect(refusal).rejects.toBeInstanceOf(MigrateError);
  await expect(refusal).rejects.toMatchObject({ code: 'drift', message: expect.stringContaining('nickname') });
});

test("check reports identity's schema and migrations in sync and leaves no shadow database behind", async () => {
  const databaseUrl = await freshDatabase();

  expect(await checkSchemaMatchesMigrations({ schemaPath: identitySchema, databaseUrl })).toEqual({ inSync: true });
  expect(await query(databaseUrl, `SELECT datname FROM pg_database WHERE datname LIKE 'rh_shadow_%'`)).toEqual([]);
});

test('check reports the missing SQL when the schema changed without a migration', async () => {
  const schemaPath = copyOfIdentity();
  editSchema(schemaPath, (schema) => schema + widgetModel);

  const check = await checkSchemaMatchesMigrations({ schemaPath, databaseUrl: await freshDatabase() });

  expect(check.inSync).toBe(false);
  expect(check.missingSql).toContain('CREATE TABLE "widgets"');
});

test('status lists unapplied migrations as pending, then reports an applied migration that was edited', async () => {
  const schemaPath = copyOfIdentity();
  const databaseUrl = await freshDatabase();
  expect(await migrationStatus({ schemaPath, databaseUrl })).toMatchObject({ pending: identityMigrations, edited: [] });
  await deployMigrations({ schemaPath, databaseUrl });
  const [first] = identityMigrations;
  const file = join(schemaPath, '..', 'migrations', first!, 'migration.sql');
  writeFileSync(file, `${readFileSync(file, 'utf8')}\n-- edited after it was applied\n`);

  const status = await migrationStatus({ schemaPath, databaseUrl });

  expect(status).toMatchObject({ migrations: identityMigrations, pending: [], failed: [], edited: [first], missingFromFolder: [] });
});

test('deploy runs a migration whose function body contains semicolons as one script', async () => {
  const schemaPath = copyOfIdentity();
  const databaseUrl = await freshDatabase();
  const directory = join(schemaPath, '..', 'migrations', '99990101000000_touch_function');
  mkdirSync(directory);
  writeFileSync(
    join(directory, 'migration.sql'),
    "CREATE FUNCTION touch() RETURNS trigger AS $$\nBEGIN\n  NEW.updated_at := now();\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;\n" +
      "INSERT INTO signing_keys (kid, algorithm, public_key_pem, private_key_sealed, sealing_key_id) VALUES ('a;b', 'x', 'y', 'z', 'k');\n",
  );

  expect(await deployMigrations({ schemaPath, databaseUrl })).toEqual([...identityMigrations, '99990101000000_touch_function']);
  expect(await query(databaseUrl, 'SELECT kid FROM signing_keys')).toEqual([{ kid: 'a;b' }]);
});

test('a failed migration is reported by status and blocks later deploys', async () => {
  const schemaPath = copyOfIdentity();
  const databaseUrl = await freshDatabase();
  const directory = join(schemaPath, '..', 'migrations', '99990101000000_broken');
  mkdirSync(directory);
  writeFileSync(join(directory, 'migration.sql'), 'ALTER TABLE no_such_table ADD COLUMN x int;\n');

  await expect(deployMigrations({ schemaPath, databaseUrl })).rejects.toThrow(/no_such_table/);
  expect(await migrationStatus({ schemaPath, databaseUrl })).toMatchObject({ failed: ['99990101000000_broken'] });
  await expect(deployMigrations({ schemaPath, databaseUrl })).rejects.toThrow(/failed/);
});

test('a missing schema file or a non-PostgreSQL URL is rejected before connecting', async () => {
  await expect(deployMigrations({ schemaPath: join(workDir, 'none.prisma'), databaseUrl: postgres.server.url('x') })).rejects.toMatchObject({
    code: 'invalid-argument',
  });
  await expect(deployMigrations({ schemaPath: identitySchema, databaseUrl: 'mysql://localhost/x' })).rejects.toMatchObject({
    code: 'invalid-argument',
  });
});

test('a statement blocked for longer than timeoutMs fails instead of waiting', async () => {
  const schemaPath = copyOfIdentity();
  const databaseUrl = await freshDatabase();
  await deployMigrations({ schemaPath, databaseUrl });
  const directory = join(schemaPath, '..', 'migrations', '99990101000000_add_nickname');
  mkdirSync(directory);
  writeFileSync(join(directory, 'migration.sql'), 'ALTER TABLE users ADD COLUMN nickname text;\n');
  const locker = new pg.Client({ connectionString: databaseUrl });
  await locker.connect();
  try {
    await locker.query('BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
    const started = Date.now();

    await expect(deployMigrations({ schemaPath, databaseUrl, timeoutMs: 500 })).rejects.toThrow(/timeout/i);
    expect(Date.now() - started).toBeLessThan(5_000);
  } finally {
    await locker.end();
  }
});
