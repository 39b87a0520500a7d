import { BusError } from '@runnerhub/bus';
import { isUuid } from './validation.js';

/** A record named by its UUID (most dialects) or its per-kind number (biRun). */
export type RecordKey = { uid: string } | { number: number };

/** The Prisma filter for a key; a malformed UUID cannot name anything, so it is simply not found. */
export function whereKey(key: RecordKey, what: string): { id: string } | { number: number } {
  if ('number' in key) return { number: key.number };
  if (!isUuid(key.uid)) throw BusError.notFound(what);
  return { id: key.uid };
}

export function conflictOnName(error: unknown, what: string): never {
  if ((error as { code?: string }).code === 'P2002') throw new BusError('RESOURCE_CONFLICT', `a ${what} with this name already exists`, '', 'name');
  throw error;
}
