import { BusError, type ErrorCode } from '@runnerhub/bus';

/**
 * What went wrong before a command could start. `outage` says whether it
 * speaks about the host being down (it then counts against the host's
 * circuit breaker) or about the request itself (it never does: a wrong
 * password or a changed host key must not trip the breaker nor be retried).
 */
const KINDS = {
  UNREACHABLE: { code: 'SERVICE_UNAVAILABLE', outage: true },
  CONNECT_TIMEOUT: { code: 'SERVICE_UNAVAILABLE', outage: true },
  HANDSHAKE_TIMEOUT: { code: 'SERVICE_UNAVAILABLE', outage: true },
  CONNECTION_LOST: { code: 'SERVICE_UNAVAILABLE', outage: true },
  CHANNEL_OPEN_FAILED: { code: 'SERVICE_UNAVAILABLE', outage: true },
  BREAKER_OPEN: { code: 'SERVICE_UNAVAILABLE', outage: false },
  // The pool is saturated by our own work: the host is fine.
  POOL_BUSY: { code: 'SERVICE_UNAVAILABLE', outage: false },
  // 403, not 401: the server refused the stored credentials, the caller's own token is fine.
  AUTH_FAILED: { code: 'PERMISSION_DENIED', outage: false },
  // The recorded key and the offered one disagree until an operator accepts the new key.
  HOST_KEY_CHANGED: { code: 'RESOURCE_CONFLICT', outage: false },
  // Inventory could not be asked to record a key seen for the first time.
  HOST_KEY_UNVERIFIED: { code: 'SERVICE_UNAVAILABLE', outage: false },
  INVALID_REQUEST: { code: 'VALIDATION_ERROR', outage: false },
  INVALID_CREDENTIALS: { code: 'VALIDATION_ERROR', outage: false },
  CLOSED: { code: 'SERVICE_UNAVAILABLE', outage: false },
} as const satisfies Record<string, { code: ErrorCode; outage: boolean }>;

export type SshErrorKind = keyof typeof KINDS;

export class SshError extends Error {
  override name = 'SshError';

  constructor(
    readonly kind: SshErrorKind,
    message: string,
    readonly field = '',
  ) {
    super(message);
  }

  get outage(): boolean {
    return KINDS[this.kind].outage;
  }

  /** The bus error a handler throws; `details` carries the kind so callers can tell e.g. HOST_KEY_CHANGED apart. */
  toBusError(): BusError {
    return new BusError(KINDS[this.kind].code, this.message, this.kind, this.field);
  }
}

export function isSshError(error: unknown, kind?: SshErrorKind): error is SshError {
  return error instanceof SshError && (kind === undefined || error.kind === kind);
}
