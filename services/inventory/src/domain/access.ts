import type { Caller } from '@runnerhub/contracts';

export type Role = 'viewer' | 'operator' | 'admin';

/**
 * Resolves the organisation a call acts in, with at least the required role
 * (viewer reads, operator changes, admin deletes). A foreign organisation is
 * RESOURCE_NOT_FOUND, a too-low role PERMISSION_DENIED.
 */
export interface OrganizationAccess {
  organizationOf(caller: Caller, organizationRef: string, requiredRole: Role): Promise<string>;
}
