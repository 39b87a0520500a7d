import type { Caller } from '@runnerhub/contracts';

export type Role = 'viewer' | 'operator' | 'admin';

/**
 * Resolves the organisation a call acts in, with at least the required role
 * (viewer reads, operator runs and cancels). A foreign organisation is
 * RESOURCE_NOT_FOUND, a too-low role PERMISSION_DENIED.
 */
export interface OrganizationAccess {
  organizationOf(caller: Caller, organizationRef: string, requiredRole: Role): Promise<string>;
}

/** Where a task runs, as inventory describes the server when the task is accepted. */
export interface TargetServer {
  uid: string;
  name: string;
  hostname: string;
  port: number;
  username: string;
  hostKeyFingerprint: string;
}

/** Looks a server up in inventory on behalf of the caller (so a foreign server is 404). */
export interface ServerDirectory {
  serverOf(caller: Caller, organizationUid: string, serverUid: string): Promise<TargetServer>;
}
