import type { FastifyInstance } from 'fastify';
import { createClient, type Bus } from '@runnerhub/bus';
import { inventoryV1 } from '@runnerhub/contracts';
import { callerOf, isoTime } from './shared.js';

const serverParams = { type: 'object', properties: { server_id: { type: 'integer', minimum: 1 } }, required: ['server_id'] } as const;
const groupParams = { type: 'object', properties: { group_id: { type: 'integer', minimum: 1 } }, required: ['group_id'] } as const;
const serverFields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  hostname: { type: 'string', minLength: 1, maxLength: 253 },
  username: { type: 'string', minLength: 1, maxLength: 64 },
  port: { type: 'integer', minimum: 1, maximum: 65535 },
  auth_type: { type: 'string', enum: ['key', 'password'] },
  ssh_key: { type: 'string', minLength: 1, maxLength: 16384 },
  password: { type: 'string', minLength: 1, maxLength: 16384 },
  description: { type: 'string', maxLength: 2000 },
  tags: { type: 'array', maxItems: 50, items: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;
const groupFields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  description: { type: 'string', maxLength: 2000 },
  server_ids: { type: 'array', maxItems: 1000, items: { type: 'integer', minimum: 1 } },
} as const;

interface ServerBody {
  name: string;
  hostname: string;
  username: string;
  port?: number;
  auth_type: string;
  ssh_key?: string;
  password?: string;
  description?: string;
  tags?: string[];
}

interface GroupBody {
  name: string;
  description?: string;
  server_ids?: number[];
}

/** biRun's server object: integer id (the uid is added); the credential only ever appears masked. */
function birunServer(server: inventoryV1.Server) {
  return {
    id: server.number,
    uid: server.uid,
    name: server.name,
    hostname: server.hostname,
    username: server.username,
    port: server.port,
    auth_type: server.authType || null,
    masked_credential: server.maskedCredential || null,
    description: server.description,
    tags: server.tags,
    created_at: isoTime(server.createdAt),
    updated_at: isoTime(server.updatedAt),
    last_health_check: isoTime(server.lastHealthCheckAt),
    health_status: server.healthStatus,
  };
}

function birunGroup(group: inventoryV1.ServerGroup) {
  return {
    id: group.number,
    uid: group.uid,
    name: group.name,
    description: group.description,
    server_ids: group.serverNumbers,
    created_at: isoTime(group.createdAt),
    updated_at: isoTime(group.updatedAt),
  };
}

const byNumber = (value: number) => ({ ref: { case: 'number' as const, value } });

/** biRun's servers and server groups, in the caller's default organisation; ids are the records' numbers. */
export async function birunServerRoutes(app: FastifyInstance, options: { bus: Bus }): Promise<void> {
  const servers = createClient(options.bus, inventoryV1.Servers);
  const groups = createClient(options.bus, inventoryV1.ServerGroups);
  const config = { dialect: 'birun' } as const;

  app.get<{ Querystring: { page?: number; limit?: number; search?: string } }>('/api/servers/', {
    config,
    onRequest: app.authenticate,
    schema: {
      querystring: {
        type: 'object',
        properties: { page: { type: 'integer', minimum: 1 }, limit: { type: 'integer', minimum: 1, maximum: 100 }, search: { type: 'string', maxLength: 200 } },
      },
    },
  }, async (request) => {
    const { page = 1, limit = 10, search = '' } = request.query;
    const { servers: found, pageInfo } = await servers.list({ caller: callerOf(request), page: { page, limit }, search });
    return { servers: found.map(birunServer), total: pageInfo!.total, page: pageInfo!.page, pages: pageInfo!.pages };
  });

  app.post<{ Body: ServerBody }>('/api/servers/', {
    config,
    onRequest: app.authenticate,
    schema: { body: { type: 'object', required: ['name', 'hostname', 'username', 'auth_type'], properties: serverFields } },
  }, async (request, reply) => {
    const body = request.body;
    const { server } = await servers.create({
      caller: callerOf(request),
      name: body.name,
      hostname: body.hostname,
      username: body.username,
      port: body.port ?? 22,
      authType: body.auth_type,
      privateKey: body.ssh_key ?? '',
      password: body.password ?? '',
      description: body.description ?? '',
      tags: body.tags ?? [],
    });
    reply.status(201);
    return birunServer(server!);
  });

  app.get<{ Params: { server_id: number } }>('/api/servers/:server_id', { config, onRequest: app.authenticate, schema: { params: serverParams } }, async (request) => {
    const { server } = await servers.get({ caller: callerOf(request), server: byNumber(request.params.server_id) });
    return birunServer(server!);
  });

  app.put<{ Params: { server_id: number }; Body: Partial<ServerBody> }>('/api/servers/:server_id', {
    config,
    onRequest: app.authenticate,
    schema: { params: serverParams, body: { type: 'object', minProperties: 1, properties: serverFields } },
  }, async (request) => {
    const body = request.body;
    const { server } = await servers.update({
      caller: callerOf(request),
      server: byNumber(request.params.server_id),
      name: body.name,
      hostname: body.hostname,
      username: body.username,
      port: body.port,
      authType: body.auth_type,
      privateKey: body.ssh_key,
      password: body.password,
      description: body.description,
      tags: body.tags ?? [],
      setTags: body.tags !== undefined,
    });
    return birunServer(server!);
  });

  app.delete<{ Params: { server_id: number } }>('/api/servers/:server_id', { config, onRequest: app.authenticate, schema: { params: serverParams } }, async (request) => {
    await servers.delete({ caller: callerOf(request), server: byNumber(request.params.server_id) });
    return { message: 'Server deleted successfully' };
  });

  app.get('/api/server-groups/', { config, onRequest: app.authenticate }, async (request) => {
    const { groups: found } = await groups.list({ caller: callerOf(request) });
    return { groups: found.map(birunGroup), total: found.length };
  });

  app.post<{ Body: GroupBody }>('/api/server-groups/', {
    config,
    onRequest: app.authenticate,
    schema: { body: { type: 'object', required: ['name'], properties: groupFields } },
  }, async (request, reply) => {
    const body = request.body;
    const { group } = await groups.create({ caller: callerOf(request), name: body.name, description: body.description ?? '', servers: (body.server_ids ?? []).map(byNumber) });
    reply.status(201);
    return birunGroup(group!);
  });

  app.get<{ Params: { group_id: number } }>('/api/server-groups/:group_id', { config, onRequest: app.authenticate, schema: { params: groupParams } }, async (request) => {
    const { group } = await groups.get({ caller: callerOf(request), group: byNumber(request.params.group_id) });
    return birunGroup(group!);
  });

  app.put<{ Params: { group_id: number }; Body: Partial<GroupBody> }>('/api/server-groups/:group_id', {
    config,
    onRequest: app.authenticate,
    schema: { params: groupParams, body: { type: 'object', minProperties: 1, properties: groupFields } },
  }, async (request) => {
    const body = request.body;
    const { group } = await groups.update({
      caller: callerOf(request),
      group: byNumber(request.params.group_id),
      name: body.name,
      description: body.description,
      servers: (body.server_ids ?? []).map(byNumber),
      setServers: body.server_ids !== undefined,
    });
    return birunGroup(group!);
  });

  app.delete<{ Params: { group_id: number } }>('/api/server-groups/:group_id', { config, onRequest: app.authenticate, schema: { params: groupParams } }, async (request) => {
    await groups.delete({ caller: callerOf(request), group: byNumber(request.params.group_id) });
    return { message: 'Server group deleted successfully' };
  });
}
