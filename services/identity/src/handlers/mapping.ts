import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { identityV1 } from '@runnerhub/contracts';
import { defaultMembership, type UserRecord } from '../domain/accounts.js';
import type { MembershipRecord } from '../domain/authorization.js';
import { permissionsOf } from '../domain/roles.js';

/** A user as seen from one organisation (default: their own default): the role is the one held there. */
export function toUserMessage(user: UserRecord, organizationId?: string): MessageInitShape<typeof identityV1.UserSchema> {
  const membership = (organizationId && user.memberships.find((m) => m.organizationId === organizationId)) || defaultMembership(user);
  const role = membership?.role ?? 'viewer';
  return {
    uid: user.id,
    number: user.number,
    username: user.username,
    email: user.email ?? '',
    fullName: user.fullName,
    role,
    permissions: permissionsOf(role),
    active: user.active,
    createdAt: timestampFromDate(user.createdAt),
    lastLoginAt: user.lastLoginAt ? timestampFromDate(user.lastLoginAt) : undefined,
    defaultOrganizationUid: user.defaultOrganizationId ?? '',
    githubId: user.githubId?.toString() ?? '',
    updatedAt: timestampFromDate(user.updatedAt),
    organizations: user.memberships.map((m) => ({
      uid: m.organization.id,
      number: m.organization.number,
      name: m.organization.name,
      shortName: m.organization.shortName,
      type: m.organization.type,
      role: m.role,
    })),
  };
}

export function toOrganizationMessage(membership: MembershipRecord): MessageInitShape<typeof identityV1.OrganizationSchema> {
  const { organization } = membership;
  return {
    uid: organization.id,
    number: organization.number,
    name: organization.name,
    shortName: organization.shortName,
    type: organization.type,
    createdAt: timestampFromDate(organization.createdAt),
    updatedAt: timestampFromDate(organization.updatedAt),
    role: membership.role,
  };
}
