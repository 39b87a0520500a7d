import type { FastifyInstance } from 'fastify';
import { BusError, createClient, type Bus } from '@runnerhub/bus';
import { executorV1, inventoryV1, schedulerV1 } from '@runnerhub/contracts';
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
  // SSH sessions run at once on the server (its sshd's MaxSessions); absent: the platform default.
  max_sessions: { type: 'integer', minimum: 1, maximum: 1000 },
} as const;
// null clears max_sessions: the platform default applies again.
const updateFields = { ...serverFields, max_sessions: { ...serverFields.max_sessions, nullable: true } } as const;
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
  /** null (update only): back to the platform default. */
  max_sessions?: number | null;
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
    max_sessions: server.maxSessions || null,
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

/** biRun's default timeout of a direct execution, in seconds. */
const EXECUTE_TIMEOUT_SECONDS = 30;
const HEALTH_CHECK_TIMEOUT_MS = 15_000;

interface ExecuteBody {
  script_content?: string;
  /** Accepted as well: a one-line script. */
  command?: string;
  timeout?: number;
}

/** biRun's servers and server groups, in the caller's default organisation; ids are the records' numbers. */
export async function birunServerRoutes(app: FastifyInstance, options: { bus: Bus }): Promise<void> {
  const servers = createClient(options.bus, inventoryV1.Servers);
  const groups = createClient(options.bus, inventoryV1.ServerGroups);
  const tasks = createClient(options.bus, schedulerV1.Tasks);
  const connectivity = createClient(options.bus, executorV1.Connectivity);
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
      maxSessions: body.max_sessions ?? undefined,
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
    schema: { params: serverParams, body: { type: 'object', minProperties: 1, properties: updateFields } },
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
      maxSessions: body.max_sessions ?? undefined,
      clearMaxSessions: body.max_sessions === null,
    });
    return birunServer(server!);
  });

  app.delete<{ Params: { server_id: number } }>('/api/servers/:server_id', { config, onRequest: app.authenticate, schema: { params: serverParams } }, async (request) => {
    await servers.delete({ caller: callerOf(request), server: byNumber(request.params.server_id) });
    return { message: 'Server deleted successfully' };
  });

  app.post<{ Params: { server_id: number }; Body: ExecuteBody }>('/api/servers/:server_id/execute', {
    config,
    onRequest: app.authenticate,
    schema: {
      params: serverParams,
      body: {
        type: 'object',
        properties: {
          script_content: { type: 'string', minLength: 1, maxLength: 1048576 },
          command: { type: 'string', minLength: 1, maxLength: 65536 },
          timeout: { type: 'integer', minimum: 1, maximum: 604800 },
        },
      },
    },
  }, async (request) => {
    const body = request.body;
    const script = body.script_content ?? body.command;
    if (!script) throw BusError.validation('script_content is required', 'script_content');
    if (body.script_content && body.command) throw BusError.validation('send script_content or command, not both', 'command');
    // biRun names servers by number; the scheduler by uid (and authorises the caller itself).
    const { server } = await servers.get({ caller: callerOf(request), server: byNumber(request.params.server_id) });
    const { task } = await tasks.submit({
      caller: callerOf(request),
      serverUid: server!.uid,
      kind: 'script',
      script: script.endsWith('\n') ? script : `${script}\n`,
      shell: '/bin/bash',
      timeoutSeconds: body.timeout ?? EXECUTE_TIMEOUT_SECONDS,
      priority: 5,
    });
    return { execution_id: task!.uid, status: task!.status, server_id: server!.number, message: 'Script execution queued successfully' };
  });

  app.post<{ Params: { server_id: number } }>('/api/servers/:server_id/health/check', { config, onRequest: app.authenticate, schema: { params: serverParams } }, async (request) => {
    const check = await connectivity.check(
      { caller: callerOf(request), serverNumber: request.params.server_id, timeoutMs: HEALTH_CHECK_TIMEOUT_MS, withFigures: true },
      { timeoutMs: HEALTH_CHECK_TIMEOUT_MS + 5_000 },
    );
    const figures = check.figures;
    return {
      server_id: check.serverNumber,
      server_name: check.serverName,
      status: check.success ? 'healthy' : 'unhealthy',
      response_time_ms: check.success ? check.latencyMs : null,
      uptime_seconds: figures?.uptimeSeconds ?? null,
      load_1min: figures?.load1min ?? null,
      disk_usage: figures?.diskUsage ?? null,
      memory_usage: figures?.memoryUsage ?? null,
      message: check.success ? 'Health check passed' : check.errorMessage,
      error_code: check.errorCode || null,
      last_checked: isoTime(check.checkedAt),
    };
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
