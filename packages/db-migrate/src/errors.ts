export type MigrateErrorCode = 'invalid-argument' | 'drift' | 'unexecutable-steps' | 'data-loss';

/** A refusal or bad input detected by the tool itself (engine and database errors pass through unchanged). */
export class MigrateError extends Error {
  constructor(
    readonly code: MigrateErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MigrateError';
  }
}
