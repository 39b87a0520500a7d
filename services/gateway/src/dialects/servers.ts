import type { FastifyInstance } from 'fastify';
import { createClient, type Bus } from '@runnerhub/bus';
import { inventoryV1 } from '@runnerhub/contracts';
import { callerOf, isoTime } from './shared.js';

const uuid = { type: 'string', pattern: '^[0-9a-fA-F-]{36}$' } as const;
const params = { type: 'object', properties: { id: uuid }, required: ['id'] } as const;
const serverFields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  hostname: { type: 'string', minLength: 1, maxLength: 253 },
  port: { type: 'integer', minimum: 1, maximum: 65535 },
  user: { type: 'string', minLength: 1, maxLength: 64 },
  auth_type: { type: 'string', enum: ['password', 'key'] },
  password: { type: 'string', minLength: 1, maxLength: 16384 },
  private_key: { type: 'string', minLength: 1, maxLength: 16384 },
  is_active: { type: 'boolean' },
} as const;

interface ServerBody {
  name: string;
  hostname: string;
  port?: number;
  user: string;
  auth_type: string;
  password?: string;
  private_key?: string;
  is_active?: boolean;
}

/** NewRemora's server object; the credential only ever appears masked. */
export function newRemoraServer(server: inventoryV1.Server) {
  return {
    id: server.uid,
    name: server.name,
    hostname: server.hostname,
    port: server.port,
    user: server.username,
    auth_type: server.authType || null,
    masked_credential: server.maskedCredential || null,
    is_active: server.status === 'active',
    created_at: isoTime(server.createdAt),
    updated_at: isoTime(server.updatedAt),
  };
}

/** NewRemora's success envelope. */
function envelope(data: unknown) {
  return { success: true, data, error: null, timestamp: new Date().toISOString() };
}

/** NewRemora's servers, in the caller's default organisation. */
export async function serverRoutes(app: FastifyInstance, options: { bus: Bus }): Promise<void> {
  const servers = createClient(options.bus, inventoryV1.Servers);
  const config = { dialect: 'newremora' } as const;

  app.post<{ Body: ServerBody }>('/api/v1/servers', {
    config,
    onRequest: app.authenticate,
    schema: { body: { type: 'object', required: ['name', 'hostname', 'user', 'auth_type'], properties: serverFields } },
  }, async (request, reply) => {
    const body = request.body;
    const { server } = await servers.create({
      caller: callerOf(request),
      name: body.name,
      hostname: body.hostname,
      port: body.port ?? 22,
      username: body.user,
      authType: body.auth_type,
      password: body.password ?? '',
      privateKey: body.private_key ?? '',
      status: body.is_active === false ? 'inactive' : 'active',
    });
    reply.status(201);
    return envelope(newRemoraServer(server!));
  });

  app.get<{ Querystring: { active_only?: boolean } }>('/api/v1/servers', {
    config,
    onRequest: app.authenticate,
    schema: { querystring: { type: 'object', properties: { active_only: { type: 'boolean' } } } },
  }, async (request) => {
    // The document lists every server at once: page through them all.
    const all: inventoryV1.Server[] = [];
    for (let page = 1; ; page++) {
      const { servers: found, pageInfo } = await servers.list({ caller: callerOf(request), page: { page, limit: 100 }, activeOnly: request.query.active_only ?? false });
      all.push(...found);
      if (page >= (pageInfo?.pages ?? 0)) break;
    }
    return envelope({ servers: all.map(newRemoraServer) });
  });

  app.get<{ Params: { id: string } }>('/api/v1/servers/:id', { config, onRequest: app.authenticate, schema: { params } }, async (request) => {
    const { server } = await servers.get({ caller: callerOf(request), server: { ref: { case: 'uid', value: request.params.id } } });
    return envelope(newRemoraServer(server!));
  });

  app.put<{ Params: { id: string }; Body: Partial<ServerBody> }>('/api/v1/servers/:id', {
    config,
    onRequest: app.authenticate,
    schema: { params, body: { type: 'object', minProperties: 1, properties: serverFields } },
  }, async (request) => {
    const body = request.body;
    const { server } = await servers.update({
      caller: callerOf(request),
      server: { ref: { case: 'uid', value: request.params.id } },
      name: body.name,
      hostname: body.hostname,
      port: body.port,
      username: body.user,
      authType: body.auth_type,
      password: body.password,
      privateKey: body.private_key,
      status: body.is_active === undefined ? undefined : body.is_active ? 'active' : 'inactive',
    });
    return envelope(newRemoraServer(server!));
  });

  app.delete<{ Params: { id: string }; Querystring: { force?: boolean } }>('/api/v1/servers/:id', {
    config,
    onRequest: app.authenticate,
    schema: { params, querystring: { type: 'object', properties: { force: { type: 'boolean' } } } },
  }, async (request) => {
    await servers.delete({ caller: callerOf(request), server: { ref: { case: 'uid', value: request.params.id } }, force: request.query.force ?? false });
    return envelope({ message: 'Server deleted successfully', id: request.params.id });
  });
}
