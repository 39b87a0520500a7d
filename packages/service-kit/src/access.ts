import { createClient, type Bus } from '@runnerhub/bus';
import { identityV1, type Caller } from '@runnerhub/contracts';

export type Role = 'viewer' | 'operator' | 'admin';

/**
 * Resolves the organisation a call acts in, with at least the required role.
 * A foreign organisation is RESOURCE_NOT_FOUND, a too-low role PERMISSION_DENIED.
 */
export interface OrganizationAccess {
  organizationOf(caller: Caller, organizationRef: string, requiredRole: Role): Promise<string>;
}

/** Roles are identity's: every call asks it for the caller's membership (it caches and invalidates). */
export function identityAccess(bus: Bus): OrganizationAccess {
  const organizations = createClient(bus, identityV1.Organizations);
  return {
    async organizationOf(caller, organizationRef, requiredRole) {
      const { organization } = await organizations.authorize({ caller, organizationRef, requiredRole });
      return organization!.uid;
    },
  };
}
