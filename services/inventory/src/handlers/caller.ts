import { BusError } from '@runnerhub/bus';
import type { Caller } from '@runnerhub/contracts';

/** The authenticated caller of a request; the gateway sets it from a verified token. */
export function requireCaller(caller: Caller | undefined): Caller {
  if (!caller?.userUid) throw new BusError('AUTH_REQUIRED', 'authentication required');
  return caller;
}
