import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkSchemaMatchesMigrations } from '@runnerhub/db-migrate';
import { startPostgres } from '@runnerhub/infra';

test('the identity schema and its committed migrations agree', async () => {
  const postgres = await startPostgres({ dataDir: mkdtempSync(join(tmpdir(), 'rh-identity-check-')) });
  try {
    await postgres.createDatabase('identity');
    const check = await checkSchemaMatchesMigrations({ schemaPath: join(new URL('.', import.meta.url).pathname, '../prisma/schema.prisma'), databaseUrl: postgres.url('identity') });
    expect(check.missingSql ?? '').toBe('');
    expect(check.inSync).toBe(true);
  } finally {
    await postgres.stop();
  }
}, 60_000);
