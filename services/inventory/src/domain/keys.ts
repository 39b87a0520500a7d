import { BusError } from '@runnerhub/bus';
import { isUuid } from './validation.js';

/** A record named by its UUID (most dialects) or its per-kind number (biRun). */
export type RecordKey = { uid: string } | { number: number };

/** The Prisma filter for a key; a malformed UUID cannot name anything, so it is simply not found. */
export function whereKey(key: RecordKey, what: string): { id: string } | { number: number } {
  if ('number' in key) return { number: key.number };
  return whereUid(key.uid, what);
}

/** Like whereKey for a uid, spelt in lower case as PostgreSQL returns it (event subjects carry it). */
export function whereUid(uid: string, what: string): { id: string } {
  if (!isUuid(uid)) throw BusError.notFound(what);
  return { id: uid.toLowerCase() };
}

export function conflictOnName(error: unknown, what: string): never {
  if ((error as { code?: string }).code === 'P2002') throw new BusError('RESOURCE_CONFLICT', `a ${what} with this name already exists`, '', 'name');
  throw error;
}
