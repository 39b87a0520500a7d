/**
 * The error vocabulary shared by every service (the RunnerHub error-code table,
 * DESIGN.md §2). A handler throws a BusError; the reply carries the code in the
 * service-framework error headers and the gateway turns it into the dialect's
 * error body with the matching HTTP status.
 */
export const ERROR_STATUS = {
  AUTH_REQUIRED: 401,
  AUTH_INVALID: 401,
  AUTH_EXPIRED: 401,
  PERMISSION_DENIED: 403,
  VALIDATION_ERROR: 400,
  RESOURCE_NOT_FOUND: 404,
  RESOURCE_CONFLICT: 409,
  RATE_LIMIT_EXCEEDED: 429,
  SERVICE_UNAVAILABLE: 503,
  INTERNAL_ERROR: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_STATUS, value);
}

export class BusError extends Error {
  override name = 'BusError';
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details = '',
    readonly field = '',
  ) {
    super(message);
    this.status = ERROR_STATUS[code];
  }

  static notFound(what: string): BusError {
    return new BusError('RESOURCE_NOT_FOUND', `${what} not found`);
  }

  static validation(message: string, field = ''): BusError {
    return new BusError('VALIDATION_ERROR', message, '', field);
  }
}
