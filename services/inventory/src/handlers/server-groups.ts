import { implement, type Registration } from '@runnerhub/bus';
import { inventoryV1 } from '@runnerhub/contracts';
import type { OrganizationAccess } from '@runnerhub/service-kit';
import type { ServerGroups } from '../domain/server-groups.js';
import { requireCaller } from './caller.js';
import { recordKey, toServerGroupMessage } from './mapping.js';

export function serverGroupsHandlers(groups: ServerGroups, access: OrganizationAccess): Registration {
  return implement(inventoryV1.ServerGroups, {
    async create(request) {
      const organizationId = await access.organizationOf(requireCaller(request.caller), request.organizationRef, 'operator');
      const servers = request.servers.map((ref) => recordKey(ref, 'server_ids'));
      return { group: toServerGroupMessage(await groups.create(organizationId, { name: request.name, description: request.description, servers })) };
    },
    async list(request) {
      const organizationId = await access.organizationOf(requireCaller(request.caller), request.organizationRef, 'viewer');
      return { groups: (await groups.list(organizationId)).map(toServerGroupMessage) };
    },
    async get(request) {
      const organizationId = await access.organizationOf(requireCaller(request.caller), request.organizationRef, 'viewer');
      return { group: toServerGroupMessage(await groups.get(organizationId, recordKey(request.group, 'group'))) };
    },
    async update(request) {
      const organizationId = await access.organizationOf(requireCaller(request.caller), request.organizationRef, 'operator');
      const servers = request.setServers ? request.servers.map((ref) => recordKey(ref, 'server_ids')) : undefined;
      const changes = { name: request.name, description: request.description, servers };
      return { group: toServerGroupMessage(await groups.update(organizationId, recordKey(request.group, 'group'), changes)) };
    },
    async delete(request) {
      const organizationId = await access.organizationOf(requireCaller(request.caller), request.organizationRef, 'admin');
      await groups.delete(organizationId, recordKey(request.group, 'group'));
      return {};
    },
  });
}
