import { BusError } from '@runnerhub/bus';
import type { UserRecord } from './accounts.js';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

export function parseRole(value: string, field = 'role'): Role {
  if (!isRole(value)) throw BusError.validation(`${field} must be one of ${ROLES.join(', ')}`, field);
  return value;
}

export type MembershipRecord = UserRecord['memberships'][number];

/**
 * The caller's membership in an organisation named by uid or short name
 * (empty: their default organisation). An organisation the caller does not
 * belong to is "not found", never "forbidden": its existence is not revealed.
 */
export function membershipIn(user: UserRecord, organizationRef: string): MembershipRecord {
  const ref = organizationRef.trim();
  const membership = ref
    ? user.memberships.find((m) => m.organizationId === ref || m.organization.shortName.toLowerCase() === ref.toLowerCase())
    : user.memberships.find((m) => m.organizationId === user.defaultOrganizationId) ?? user.memberships[0];
  if (!membership) throw BusError.notFound('organization');
  return membership;
}

export function requireRole(membership: MembershipRecord, required: Role): MembershipRecord {
  if (ROLES.indexOf(membership.role as Role) < ROLES.indexOf(required)) {
    throw new BusError('PERMISSION_DENIED', `this needs the ${required} role in ${membership.organization.shortName}`);
  }
  return membership;
}
