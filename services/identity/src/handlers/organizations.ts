import { implement, type Registration } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import { parseRole } from '../domain/authorization.js';
import type { Organizations } from '../domain/organizations.js';
import { requireCaller } from './caller.js';
import { toOrganizationMessage } from './mapping.js';

export function organizationsHandlers(organizations: Organizations): Registration[] {
  return [
    implement(identityV1.Organizations, {
      async create(request) {
        const caller = requireCaller(request.caller);
        return { organization: toOrganizationMessage(await organizations.create(caller.userUid, request)) };
      },
      async onboard(request) {
        const caller = requireCaller(request.caller);
        return { organization: toOrganizationMessage(await organizations.create(caller.userUid, request, { makeDefault: true })) };
      },
      async list(request) {
        const caller = requireCaller(request.caller);
        return { organizations: (await organizations.list(caller.userUid)).map(toOrganizationMessage) };
      },
      async get(request) {
        const caller = requireCaller(request.caller);
        return { organization: toOrganizationMessage(await organizations.authorize(caller.userUid, request.organizationRef)) };
      },
      async update(request) {
        const caller = requireCaller(request.caller);
        const membership = await organizations.update(caller.userUid, request.organizationRef, { name: request.name, shortName: request.shortName, type: request.type });
        return { organization: toOrganizationMessage(membership) };
      },
      async authorize(request) {
        const caller = requireCaller(request.caller);
        const membership = await organizations.authorize(caller.userUid, request.organizationRef || caller.organizationUid, parseRole(request.requiredRole || 'viewer', 'required_role'));
        return { organization: toOrganizationMessage(membership), role: membership.role };
      },
    }),
  ];
}
