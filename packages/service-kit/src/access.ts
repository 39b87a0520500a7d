import { createClient, subscribeEvents, type Bus } from '@runnerhub/bus';
import { identityV1, type Caller } from '@runnerhub/contracts';
import { LookupCache } from './lookup-cache.js';

export type Role = 'viewer' | 'operator' | 'admin';

/**
 * Resolves the organisation a call acts in, with at least the required role.
 * A foreign organisation is RESOURCE_NOT_FOUND, a too-low role PERMISSION_DENIED.
 */
export interface OrganizationAccess {
  organizationOf(caller: Caller, organizationRef: string, requiredRole: Role): Promise<string>;
}

export interface AccessCacheOptions {
  /** How long a granted access is reused without asking identity; 0 asks every time. */
  cacheMs: number;
  /** Most grants remembered. */
  max?: number;
}

/** The subject identity publishes on whenever a user's memberships or roles change. */
const USER_CHANGED = 'events.identity.user.*.changed';

/**
 * Roles are identity's: a call asks it for the caller's membership. With a
 * cache, a grant is reused for `cacheMs` (refusals never are), and identity's
 * user-changed event drops the user's grants at once.
 */
export function identityAccess(bus: Bus, cache: AccessCacheOptions = { cacheMs: 0 }): OrganizationAccess {
  const organizations = createClient(bus, identityV1.Organizations);
  const authorize = async (caller: Caller, organizationRef: string, requiredRole: Role) => {
    const { organization } = await organizations.authorize({ caller, organizationRef, requiredRole });
    return organization!.uid;
  };
  if (cache.cacheMs <= 0) return { organizationOf: authorize };

  const grants = new LookupCache<string>({ ttlMs: cache.cacheMs, max: cache.max });
  subscribeEvents(bus, USER_CHANGED, identityV1.UserChangedSchema, (event) => grants.dropGroup(event.userUid));
  return {
    organizationOf: (caller, organizationRef, requiredRole) =>
      // The default organisation is the token's: it is part of what was granted.
      grants.get(`${caller.userUid}\0${caller.organizationUid}\0${organizationRef}\0${requiredRole}`, caller.userUid, () => authorize(caller, organizationRef, requiredRole)),
  };
}
