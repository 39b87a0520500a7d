import { join } from 'node:path';
import { checkSchemaMatchesMigrations } from '@runnerhub/db-migrate';
import { startThrowawayPostgres } from '@runnerhub/infra';

test('the identity schema and its committed migrations agree', async () => {
  const postgres = await startThrowawayPostgres();
  try {
    const check = await checkSchemaMatchesMigrations({
      schemaPath: join(new URL('.', import.meta.url).pathname, '../prisma/schema.prisma'),
      databaseUrl: await postgres.freshDatabase('identity'),
    });
    expect(check.missingSql ?? '').toBe('');
    expect(check.inSync).toBe(true);
  } finally {
    await postgres.dispose();
  }
}, 60_000);
