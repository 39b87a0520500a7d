import type { Caller } from '@runnerhub/contracts';

export type { OrganizationAccess, Role } from '@runnerhub/service-kit';

/** Where a task runs, as inventory describes the server when the task is accepted. */
export interface TargetServer {
  uid: string;
  name: string;
  hostname: string;
  port: number;
  username: string;
  hostKeyFingerprint: string;
  /** The record's max_sessions; 0 when it sets none. */
  maxSessions: number;
}

/** Looks a server up in inventory on behalf of the caller (so a foreign server is 404). */
export interface ServerDirectory {
  serverOf(caller: Caller, organizationUid: string, serverUid: string): Promise<TargetServer>;
}
