import { randomUUID } from 'node:crypto';
import type { ErrorCode } from '@runnerhub/bus';

/** The five public documents; each has its own error body (DESIGN.md §1). */
export type Dialect = 'runnerhub' | 'runnerpilot' | 'rustci' | 'birun' | 'newremora';

export interface ApiError {
  status: number;
  code: ErrorCode;
  message: string;
  details?: string;
  field?: string;
}

const RUSTCI_TYPES: Record<ErrorCode, string> = {
  AUTH_REQUIRED: 'authentication_error',
  AUTH_INVALID: 'authentication_error',
  AUTH_EXPIRED: 'authentication_error',
  PERMISSION_DENIED: 'authorization_error',
  VALIDATION_ERROR: 'validation_error',
  RESOURCE_NOT_FOUND: 'not_found',
  RESOURCE_CONFLICT: 'conflict',
  RATE_LIMIT_EXCEEDED: 'rate_limit_exceeded',
  SERVICE_UNAVAILABLE: 'service_unavailable',
  INTERNAL_ERROR: 'internal_error',
};

export function errorBody(dialect: Dialect, error: ApiError, requestId: string = randomUUID()): Record<string, unknown> {
  const timestamp = new Date().toISOString();
  switch (dialect) {
    case 'rustci':
      return { error: { type: RUSTCI_TYPES[error.code], message: error.message, details: error.details ?? null, timestamp, correlation_id: requestId } };
    case 'birun':
      return { error: error.message, status: 'error', details: { code: error.code, field: error.field ?? null, info: error.details ?? null } };
    case 'newremora':
      return { success: false, data: null, error: error.message, request_id: requestId, timestamp };
    case 'runnerhub':
    case 'runnerpilot':
      return { success: false, error: { code: error.code, message: error.message, details: error.details ?? null, field: error.field ?? null }, timestamp };
  }
}

/** biRun is a FastAPI service: its validation failures are 422; the others answer 400. */
export function validationStatus(dialect: Dialect): number {
  return dialect === 'birun' ? 422 : 400;
}

/** The dialect of a path no route matched, from the documents' mount points. */
export function dialectOfPath(path: string): Dialect {
  if (path.startsWith('/api/v1/')) return 'newremora';
  if (path.startsWith('/v1/')) return 'rustci';
  if (/^\/api\/(servers|server-groups|scripts|schedules|workflows|executions|settings|health)(\/|$)/.test(path)) return 'birun';
  if (/^\/(auth|onboarding|common|org)(\/|$)/.test(path)) return 'runnerpilot';
  return 'runnerhub';
}
