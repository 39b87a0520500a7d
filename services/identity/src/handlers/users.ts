import { implement, type Registration } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import type { Accounts } from '../domain/accounts.js';
import type { OrganizationUsers } from '../domain/users.js';
import { requireCaller } from './caller.js';
import { toUserMessage } from './mapping.js';

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;

export function usersHandlers(accounts: Accounts, users: OrganizationUsers): Registration[] {
  return [
    implement(identityV1.Users, {
      async getMe(request) {
        return { user: toUserMessage(await accounts.me(requireCaller(request.caller).userUid)) };
      },
      async updateMe(request) {
        const caller = requireCaller(request.caller);
        const user = await users.update(caller.userUid, caller.organizationUid, caller.userUid, {
          email: request.email,
          fullName: request.fullName,
          username: request.username,
          password: request.password,
        });
        return { user: toUserMessage(user, caller.organizationUid) };
      },
      async list(request) {
        const caller = requireCaller(request.caller);
        const page = Math.max(1, request.page?.page || 1);
        const limit = Math.min(MAX_LIMIT, Math.max(1, request.page?.limit || DEFAULT_LIMIT));
        const { users: found, total } = await users.list(caller.userUid, caller.organizationUid, { page, limit, role: request.role || undefined });
        return {
          users: found.map((user) => toUserMessage(user, caller.organizationUid)),
          pageInfo: { page, limit, total, pages: Math.ceil(total / limit) },
        };
      },
      async create(request) {
        const caller = requireCaller(request.caller);
        const user = await users.create(caller.userUid, caller.organizationUid, {
          username: request.username,
          password: request.password,
          role: request.role,
          email: request.email,
          fullName: request.fullName,
        });
        return { user: toUserMessage(user, caller.organizationUid) };
      },
      async update(request) {
        const caller = requireCaller(request.caller);
        const user = await users.update(caller.userUid, caller.organizationUid, request.userUid, {
          username: request.username,
          email: request.email,
          fullName: request.fullName,
          role: request.role,
          password: request.password,
          active: request.active,
        });
        return { user: toUserMessage(user, caller.organizationUid) };
      },
      async delete(request) {
        const caller = requireCaller(request.caller);
        await users.remove(caller.userUid, caller.organizationUid, request.userUid);
        return {};
      },
    }),
  ];
}
