import { checkSchemaMatchesMigrations } from '@runnerhub/db-migrate';
import { startThrowawayPostgres, type ThrowawayPostgres } from '@runnerhub/infra';
import { databaseName, dataOwningServices, schemaPath } from './services.js';

let postgres: ThrowawayPostgres;

beforeAll(async () => {
  postgres = await startThrowawayPostgres();
});

afterAll(async () => {
  await postgres?.dispose();
});

test('there is at least one data-owning service to check', () => {
  expect(dataOwningServices()).toContain('identity');
});

test.each(dataOwningServices())('the %s schema and its committed migrations agree', async (service) => {
  const check = await checkSchemaMatchesMigrations({ schemaPath: schemaPath(service), databaseUrl: await postgres.freshDatabase(databaseName(service)) });
  expect(check.missingSql ?? '').toBe('');
  expect(check.inSync).toBe(true);
}, 60_000);
