export {
  checkSchemaMatchesMigrations,
  createMigration,
  deployMigrations,
  migrationStatus,
  type CreateMigrationOptions,
  type CreateMigrationResult,
  type MigrateOptions,
  type MigrationStatus,
  type SchemaCheck,
} from './migrate.js';
export { MigrateError, type MigrateErrorCode } from './errors.js';
export { migrationsFolderOf } from './migrations-folder.js';
