import { createClient, type Bus } from '@runnerhub/bus';
import { identityV1, type Caller } from '@runnerhub/contracts';
import type { OrganizationAccess, Role } from '../domain/access.js';

/** Roles are identity's: every call asks it for the caller's membership (it caches and invalidates). */
export function identityAccess(bus: Bus): OrganizationAccess {
  const organizations = createClient(bus, identityV1.Organizations);
  return {
    async organizationOf(caller: Caller, organizationRef: string, requiredRole: Role): Promise<string> {
      const { organization } = await organizations.authorize({ caller, organizationRef, requiredRole });
      return organization!.uid;
    },
  };
}
