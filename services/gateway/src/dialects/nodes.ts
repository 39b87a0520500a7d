import type { FastifyInstance } from 'fastify';
import { createClient, type Bus } from '@runnerhub/bus';
import { inventoryV1 } from '@runnerhub/contracts';
import { callerOf, isoTime } from './shared.js';

const orgParams = { type: 'object', properties: { org_id: { type: 'string', minLength: 1, maxLength: 64 } }, required: ['org_id'] } as const;
const nodeParams = {
  type: 'object',
  properties: { org_id: { type: 'string', minLength: 1, maxLength: 64 }, node_id: { type: 'string', pattern: '^[0-9a-fA-F-]{36}$' } },
  required: ['org_id', 'node_id'],
} as const;
const nodeFields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  type: { type: 'string', enum: ['Remote', 'Socket'] },
  ip_address: { type: 'string', minLength: 1, maxLength: 253 },
  port: { type: 'integer', minimum: 1, maximum: 65535 },
  status: { type: 'string', enum: ['active', 'inactive'] },
  // SSH sessions run at once on the node (its sshd's MaxSessions); absent: the platform default.
  max_sessions: { type: 'integer', minimum: 1, maximum: 1000 },
} as const;
// null clears max_sessions: the platform default applies again.
const updateFields = { ...nodeFields, max_sessions: { ...nodeFields.max_sessions, nullable: true } } as const;

interface NodeBody {
  name: string;
  type: string;
  ip_address?: string;
  port?: number;
  status?: string;
  /** null (update only): back to the platform default. */
  max_sessions?: number | null;
}

/** Runner Pilot's node: a server of the organisation, Remote (SSH) or Socket (agent). */
function pilotNode(server: inventoryV1.Server) {
  return {
    uid: server.uid,
    name: server.name,
    type: server.nodeType,
    ip_address: server.hostname || null,
    port: server.port,
    status: server.status,
    max_sessions: server.maxSessions || null,
    created_at: isoTime(server.createdAt),
  };
}

/** Runner Pilot's nodes; `{org_id}` is the organisation's uid or short_name. */
export async function nodeRoutes(app: FastifyInstance, options: { bus: Bus }): Promise<void> {
  const servers = createClient(options.bus, inventoryV1.Servers);
  const config = { dialect: 'runnerpilot' } as const;
  const byUid = (value: string) => ({ ref: { case: 'uid' as const, value } });

  app.post<{ Params: { org_id: string }; Body: NodeBody }>('/org/:org_id/nodes', {
    config,
    onRequest: app.authenticate,
    schema: { params: orgParams, body: { type: 'object', required: ['name', 'type'], properties: nodeFields } },
  }, async (request) => {
    const body = request.body;
    const { server } = await servers.create({
      caller: callerOf(request),
      organizationRef: request.params.org_id,
      name: body.name,
      nodeType: body.type,
      hostname: body.ip_address ?? '',
      port: body.port ?? 22,
      status: body.status ?? 'active',
      maxSessions: body.max_sessions ?? undefined,
    });
    return pilotNode(server!);
  });

  app.get<{ Params: { org_id: string } }>('/org/:org_id/nodes', { config, onRequest: app.authenticate, schema: { params: orgParams } }, async (request) => {
    // The document lists every node at once: page through them all.
    const all: inventoryV1.Server[] = [];
    for (let page = 1; ; page++) {
      const { servers: found, pageInfo } = await servers.list({ caller: callerOf(request), organizationRef: request.params.org_id, page: { page, limit: 100 } });
      all.push(...found);
      if (page >= (pageInfo?.pages ?? 0)) break;
    }
    return all.map(pilotNode);
  });

  app.get<{ Params: { org_id: string; node_id: string } }>('/org/:org_id/nodes/:node_id', { config, onRequest: app.authenticate, schema: { params: nodeParams } }, async (request) => {
    const { server } = await servers.get({ caller: callerOf(request), organizationRef: request.params.org_id, server: byUid(request.params.node_id) });
    return pilotNode(server!);
  });

  app.put<{ Params: { org_id: string; node_id: string }; Body: Partial<NodeBody> }>('/org/:org_id/nodes/:node_id', {
    config,
    onRequest: app.authenticate,
    schema: { params: nodeParams, body: { type: 'object', minProperties: 1, properties: updateFields } },
  }, async (request) => {
    const body = request.body;
    const { server } = await servers.update({
      caller: callerOf(request),
      organizationRef: request.params.org_id,
      server: byUid(request.params.node_id),
      name: body.name,
      nodeType: body.type,
      hostname: body.ip_address,
      port: body.port,
      status: body.status,
      maxSessions: body.max_sessions ?? undefined,
      clearMaxSessions: body.max_sessions === null,
    });
    return pilotNode(server!);
  });

  app.delete<{ Params: { org_id: string; node_id: string } }>('/org/:org_id/nodes/:node_id', { config, onRequest: app.authenticate, schema: { params: nodeParams } }, async (request) => {
    await servers.delete({ caller: callerOf(request), organizationRef: request.params.org_id, server: byUid(request.params.node_id) });
    return { message: 'Node deleted successfully.' };
  });
}
