import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BusError, createClient, type Bus } from '@runnerhub/bus';
import { executorV1, inventoryV1 } from '@runnerhub/contracts';
import { callerOf, isoTime } from './shared.js';

/** A private key is a few KiB: upload-pem refuses anything larger. */
export const MAX_PEM_BYTES = 64 * 1024;
/** Whole connectivity check (connect, login, command) of one server. */
export const CHECK_TIMEOUT_MS = 10_000;
/** Servers checked at once by check-status. */
export const CHECK_CONCURRENCY = 8;

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
  // "pem://<id>" as upload-pem answered: log in with that key.
  pem_file_url: { type: 'string', minLength: 1, maxLength: 200 },
  // SSH sessions run at once on the server (its sshd's MaxSessions); absent: the platform default.
  max_sessions: { type: 'integer', minimum: 1, maximum: 1000 },
} as const;
const updateFields = {
  ...serverFields,
  accept_host_key: { type: 'boolean' },
  // null clears it: the platform default applies again.
  max_sessions: { ...serverFields.max_sessions, nullable: true },
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
  pem_file_url?: string;
  accept_host_key?: boolean;
  /** null (update only): back to the platform default. */
  max_sessions?: number | null;
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
    host_key_fingerprint: server.hostKeyFingerprint || null,
    max_sessions: server.maxSessions || null,
    health_status: server.healthStatus,
    last_check_at: isoTime(server.lastHealthCheckAt),
    created_at: isoTime(server.createdAt),
    updated_at: isoTime(server.updatedAt),
  };
}

/** NewRemora's success envelope. */
function envelope(data: unknown) {
  return { success: true, data, error: null, timestamp: new Date().toISOString() };
}

/** A connectivity check as NewRemora's test answers it (plus why it failed, and the host key seen). */
function testResult(check: executorV1.CheckConnectivityResponse) {
  return {
    server_id: check.serverUid,
    status: check.success ? 'connected' : 'disconnected',
    response_time_ms: check.success ? check.latencyMs : null,
    test_command: check.testCommand,
    test_output: check.success ? check.testOutput : null,
    message: check.success ? 'Connection successful' : check.errorMessage,
    error_code: check.errorCode || null,
    host_key_fingerprint: check.hostKeyFingerprint || null,
    timestamp: isoTime(check.checkedAt) ?? new Date().toISOString(),
  };
}

/** Runs `work` over `items` with at most `limit` at once, keeping the order of the results. */
async function mapBounded<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** The one file of an upload-pem request, at most MAX_PEM_BYTES. */
async function pemFileOf(request: FastifyRequest): Promise<{ filename: string; content: Buffer }> {
  if (!request.isMultipart()) throw BusError.validation('send multipart/form-data with the key in the field pem_file', 'pem_file');
  let found: { filename: string; content: Buffer } | undefined;
  try {
    for await (const part of request.parts()) {
      if (part.type !== 'file') continue;
      if (part.fieldname !== 'pem_file' || found) {
        part.file.resume();
        continue;
      }
      found = { filename: part.filename, content: await part.toBuffer() };
    }
  } catch (error) {
    if ((error as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw BusError.validation(`pem_file must be at most ${MAX_PEM_BYTES} bytes`, 'pem_file');
    if (error instanceof BusError) throw error;
    throw BusError.validation(`the multipart body could not be read: ${(error as Error).message}`, 'pem_file');
  }
  if (!found) throw BusError.validation('the file field pem_file is required', 'pem_file');
  return found;
}

/** NewRemora's servers, in the caller's default organisation. */
export async function serverRoutes(app: FastifyInstance, options: { bus: Bus }): Promise<void> {
  const servers = createClient(options.bus, inventoryV1.Servers);
  const connectivity = createClient(options.bus, executorV1.Connectivity);
  const config = { dialect: 'newremora' } as const;
  // Only these routes take multipart bodies (this plugin is not shared with the other dialects).
  await app.register(multipart, { limits: { fileSize: MAX_PEM_BYTES, files: 1, fields: 10, parts: 11, fieldSize: 1024 } });
  const check = (request: FastifyRequest, serverUid: string) =>
    connectivity.check({ caller: callerOf(request), serverUid, timeoutMs: CHECK_TIMEOUT_MS }, { timeoutMs: CHECK_TIMEOUT_MS + 5_000 });

  app.post<{ Params: { id: string } }>('/api/v1/servers/:id/test', { config, onRequest: app.authenticate, schema: { params } }, async (request) => {
    return envelope(testResult(await check(request, request.params.id)));
  });

  app.post<{ Querystring: { active_only?: boolean } }>('/api/v1/servers/check-status', {
    config,
    onRequest: app.authenticate,
    schema: { querystring: { type: 'object', properties: { active_only: { type: 'boolean' } } } },
  }, async (request) => {
    const started = performance.now();
    const all: inventoryV1.Server[] = [];
    for (let page = 1; ; page++) {
      const { servers: found, pageInfo } = await servers.list({ caller: callerOf(request), page: { page, limit: 100 }, activeOnly: request.query.active_only ?? false });
      all.push(...found);
      if (page >= (pageInfo?.pages ?? 0)) break;
    }
    const results = await mapBounded(all, CHECK_CONCURRENCY, async (server) => {
      try {
        const { server_id, status, response_time_ms, message, error_code } = testResult(await check(request, server.uid));
        return { server_id, status, response_time_ms, message, error_code };
      } catch (error) {
        return { server_id: server.uid, status: 'disconnected', response_time_ms: null, message: (error as Error).message, error_code: error instanceof BusError ? error.code : 'CHECK_FAILED' };
      }
    });
    const connected = results.filter((result) => result.status === 'connected').length;
    return envelope({
      servers: results,
      summary: { total_checked: results.length, connected, disconnected: results.length - connected, check_duration_ms: Math.round(performance.now() - started) },
    });
  });

  app.post('/api/v1/servers/upload-pem', { config, onRequest: app.authenticate }, async (request, reply) => {
    const { filename, content } = await pemFileOf(request);
    const { pemFile } = await servers.uploadPemFile({ caller: callerOf(request), filename, content });
    reply.status(201);
    return envelope({ id: pemFile!.uid, filename: pemFile!.filename, url: pemFile!.ref, pem_file_url: pemFile!.ref, size: pemFile!.size, uploaded_at: isoTime(pemFile!.uploadedAt) });
  });

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
      pemFileRef: body.pem_file_url ?? '',
      status: body.is_active === false ? 'inactive' : 'active',
      maxSessions: body.max_sessions ?? undefined,
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
    schema: { params, body: { type: 'object', minProperties: 1, properties: updateFields } },
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
      pemFileRef: body.pem_file_url,
      status: body.is_active === undefined ? undefined : body.is_active ? 'active' : 'inactive',
      acceptHostKey: body.accept_host_key ?? false,
      maxSessions: body.max_sessions ?? undefined,
      clearMaxSessions: body.max_sessions === null,
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
