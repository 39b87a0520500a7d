import type { FastifyInstance } from 'fastify';
import { createClient, type Bus } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import { callerOf, isoTime } from './shared.js';

const role = { type: 'string', enum: ['admin', 'operator', 'viewer'] } as const;
const password = { type: 'string', minLength: 1, maxLength: 1024 } as const;
const uuid = { type: 'string', pattern: '^[0-9a-fA-F-]{36}$' } as const;

/** RunnerHub's user object. */
function runnerhubUser(user: identityV1.User) {
  return {
    id: user.uid,
    username: user.username,
    email: user.email || null,
    fullName: user.fullName,
    role: user.role,
    permissions: user.permissions,
    active: user.active,
    createdAt: isoTime(user.createdAt),
    lastLogin: isoTime(user.lastLoginAt),
  };
}

/** RustCI's user object. */
function rustciUser(user: identityV1.User) {
  return {
    id: user.uid,
    username: user.username,
    email: user.email || null,
    github_id: user.githubId || null,
    roles: [user.role],
    created_at: isoTime(user.createdAt),
    updated_at: isoTime(user.updatedAt),
    last_login: isoTime(user.lastLoginAt),
  };
}

/** Users of the caller's organisation (RunnerHub, admin only) and the current user (RustCI). */
export async function userRoutes(app: FastifyInstance, options: { bus: Bus }): Promise<void> {
  const users = createClient(options.bus, identityV1.Users);
  const config = { dialect: 'runnerhub' } as const;

  app.get<{ Querystring: { page?: number; limit?: number; role?: string } }>('/api/users', {
    config,
    onRequest: app.authenticate,
    schema: {
      querystring: {
        type: 'object',
        properties: { page: { type: 'integer', minimum: 1 }, limit: { type: 'integer', minimum: 1, maximum: 100 }, role },
        additionalProperties: false,
      },
    },
  }, async (request) => {
    const { users: found, pageInfo } = await users.list({ caller: callerOf(request), page: { page: request.query.page ?? 1, limit: request.query.limit ?? 20 }, role: request.query.role ?? '' });
    const page = pageInfo!;
    return {
      users: found.map(runnerhubUser),
      pagination: { page: page.page, limit: page.limit, total: page.total, pages: page.pages, hasNext: page.page < page.pages, hasPrev: page.page > 1 },
    };
  });

  app.post<{ Body: { username: string; password: string; role?: string; email?: string; fullName?: string } }>('/api/users', {
    config,
    onRequest: app.authenticate,
    schema: {
      body: {
        type: 'object',
        required: ['username', 'password'],
        properties: { username: { type: 'string', minLength: 1, maxLength: 64 }, password, role, email: { type: 'string', maxLength: 254 }, fullName: { type: 'string', maxLength: 200 } },
      },
    },
  }, async (request, reply) => {
    const { user } = await users.create({ caller: callerOf(request), ...request.body, role: request.body.role ?? 'viewer', email: request.body.email ?? '', fullName: request.body.fullName ?? '' });
    reply.status(201);
    return runnerhubUser(user!);
  });

  app.put<{ Params: { id: string }; Body: { username?: string; password?: string; role?: string; email?: string; fullName?: string; active?: boolean } }>('/api/users/:id', {
    config,
    onRequest: app.authenticate,
    schema: {
      params: { type: 'object', properties: { id: uuid }, required: ['id'] },
      body: {
        type: 'object',
        minProperties: 1,
        properties: { username: { type: 'string', minLength: 1, maxLength: 64 }, password, role, email: { type: 'string', maxLength: 254 }, fullName: { type: 'string', maxLength: 200 }, active: { type: 'boolean' } },
        additionalProperties: false,
      },
    },
  }, async (request) => {
    const { user } = await users.update({ caller: callerOf(request), userUid: request.params.id, ...request.body });
    return runnerhubUser(user!);
  });

  app.delete<{ Params: { id: string } }>('/api/users/:id', {
    config,
    onRequest: app.authenticate,
    schema: { params: { type: 'object', properties: { id: uuid }, required: ['id'] } },
  }, async (request) => {
    await users.delete({ caller: callerOf(request), userUid: request.params.id });
    return { success: true, message: 'User deleted', timestamp: new Date().toISOString() };
  });

  app.get('/v1/api/users/me', { config: { dialect: 'rustci' }, onRequest: app.authenticate }, async (request) => {
    const { user } = await users.getMe({ caller: callerOf(request) });
    return rustciUser(user!);
  });

  app.put<{ Body: { email?: string; username?: string; full_name?: string; password?: string } }>('/v1/api/users/me', {
    config: { dialect: 'rustci' },
    onRequest: app.authenticate,
    schema: {
      body: {
        type: 'object',
        minProperties: 1,
        properties: { email: { type: 'string', maxLength: 254 }, username: { type: 'string', minLength: 1, maxLength: 64 }, full_name: { type: 'string', maxLength: 200 }, password },
        additionalProperties: false,
      },
    },
  }, async (request) => {
    const { email, username, full_name: fullName, password: newPassword } = request.body;
    const { user } = await users.updateMe({ caller: callerOf(request), email, username, fullName, password: newPassword });
    return rustciUser(user!);
  });
}
