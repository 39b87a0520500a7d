import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { identityV1 } from '@runnerhub/contracts';
import { defaultMembership, type UserRecord } from '../domain/accounts.js';
import { permissionsOf } from '../domain/roles.js';

export function toUserMessage(user: UserRecord): MessageInitShape<typeof identityV1.UserSchema> {
  const role = defaultMembership(user)?.role ?? 'viewer';
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
