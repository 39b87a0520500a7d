import { appendFileSync, cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startThrowawayPostgres, type ThrowawayPostgres } from '@runnerhub/infra';
import { oneLine, runCli, USAGE } from './run-cli.js';

const identityPrisma = fileURLToPath(new URL('../../../services/identity/prisma', import.meta.url));

let postgres: ThrowawayPostgres;
let workDir: string;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'rh-db-cli-'));
  postgres = await startThrowawayPostgres();
});

afterAll(async () => {
  await postgres?.dispose();
  rmSync(workDir, { recursive: true, force: true });
});

const freshDatabase = () => postgres.freshDatabase('cli');

async function rhDb(args: string[], env: Record<string, string> = {}) {
  const output = { stdout: '', stderr: '' };
  const code = await runCli(args, {
    env,
    stdout: (text) => (output.stdout += text),
    stderr: (text) => (output.stderr += text),
  });
  return { code, ...output };
}

test('deploy takes the URL from DATABASE_URL and names the migrations it applied', async () => {
  const schema = join(identityPrisma, 'schema.prisma');
  const env = { DATABASE_URL: await freshDatabase() };

  const first = await rhDb(['deploy', '--schema', schema], env);
  const second = await rhDb(['deploy', '--schema', schema], env);

  expect(first).toMatchObject({ code: 0, stderr: '' });
  const committed = readdirSync(join(identityPrisma, 'migrations')).filter((name) => /^\d{14}_/.test(name)).sort();
  expect(first.stdout).toBe(`Applied ${committed.length} migration(s): ${committed.join(', ')}\n`);
  expect(second).toEqual({ code: 0, stdout: 'No pending migrations to apply.\n', stderr: '' });
});

test('status exits 1 and names the migrations not applied yet', async () => {
  const result = await rhDb(['status', '--schema', join(identityPrisma, 'schema.prisma'), '--url', await freshDatabase()]);

  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(/Not yet applied: \d{14}_init/);
});

test('check exits 1 and prints the missing SQL when the schema has changes no migration contains', async () => {
  const dir = mkdtempSync(join(workDir, 'identity-'));
  cpSync(identityPrisma, join(dir, 'prisma'), { recursive: true });
  const schema = join(dir, 'prisma', 'schema.prisma');
  const url = await freshDatabase();
  expect(await rhDb(['check', '--schema', schema, '--url', url])).toMatchObject({ code: 0 });
  appendFileSync(schema, '\nmodel Widget {\n  id Int @id\n\n  @@map("widgets")\n}\n');

  const result = await rhDb(['check', '--schema', schema, '--url', url]);

  expect(result.code).toBe(1);
  expect(result.stdout).toContain('CREATE TABLE "widgets"');
  expect(result.stderr.split('\n').filter(Boolean)).toHaveLength(1);
});

test('a missing --schema, database URL or command exits 2 with the usage line', async () => {
  expect(await rhDb(['deploy', '--url', 'postgresql://x@127.0.0.1/x'])).toEqual({
    code: 2,
    stdout: '',
    stderr: `rh-db: missing --schema <path>\n${USAGE}\n`,
  });
  expect((await rhDb(['deploy', '--schema', 'schema.prisma'])).stderr).toContain('pass --url or set DATABASE_URL');
  expect((await rhDb(['migrate', '--schema', 'schema.prisma'])).code).toBe(2);
  expect((await rhDb(['dev', '--schema', 'schema.prisma', '--url', 'postgresql://x@127.0.0.1/x'])).stderr).toBe(
    'rh-db dev: dev needs --name <name> for the new migration\n',
  );
});

test('engine errors are reported on one line without the span trace or code frame', () => {
  const error = new Error(
    'error: Type "Strin" is neither a built-in type, nor refers to another model.\n  -->  schema.prisma:6\n   | \n 5 |  id Int @id\n 6 |  b Strin\n   | \n' +
      '   0: schema_engine_wasm::wasm::engine::Diff\n             at schema-engine/schema-engine-wasm/src/wasm/engine.rs:242',
  );

  expect(oneLine(error)).toBe('error: Type "Strin" is neither a built-in type, nor refers to another model. -->  schema.prisma:6');
});
