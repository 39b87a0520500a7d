import type { FastifyInstance, FastifyRequest } from 'fastify';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { createClient, type Bus } from '@runnerhub/bus';
import { schedulerV1 } from '@runnerhub/contracts';
import { outputDocument, readOutputTail, streamJob } from './job-output.js';
import { callerOf, isoTime } from './shared.js';

const uuid = { type: 'string', pattern: '^[0-9a-fA-F-]{36}$' } as const;
const params = { type: 'object', properties: { id: uuid }, required: ['id'] } as const;
const argsSchema = { anyOf: [{ type: 'string', maxLength: 65536 }, { type: 'array', maxItems: 1000, items: { type: 'string', maxLength: 65536 } }] } as const;
const common = {
  server_id: uuid,
  timeout: { type: 'integer', minimum: 1, maximum: 604800 },
  priority: { type: 'integer', minimum: 0, maximum: 9 },
  env: { type: 'object', maxProperties: 200, additionalProperties: { type: 'string', maxLength: 65536 } },
  safe_to_retry: { type: 'boolean' },
} as const;
/** NewRemora sends no priority: the middle of 0–9, so callers can go either way. */
const DEFAULT_PRIORITY = 5;

interface CommonBody {
  server_id: string;
  timeout?: number;
  priority?: number;
  env?: Record<string, string>;
  safe_to_retry?: boolean;
}
/** What every accepted job carries, whichever way its work is given. */
function submission(request: FastifyRequest, body: CommonBody) {
  return {
    caller: callerOf(request),
    serverUid: body.server_id,
    env: body.env ?? {},
    timeoutSeconds: body.timeout ?? 0,
    priority: body.priority ?? DEFAULT_PRIORITY,
    safeToRetry: body.safe_to_retry ?? false,
  };
}

type CommandBody = CommonBody & { command: string; args?: string | string[] };
type ScriptBody = CommonBody & { script: string; shell?: string };
interface DuplicateBody {
  server_id?: string;
  timeout?: number;
  priority?: number;
  command?: string;
  args?: string | string[];
  script?: string;
  shell?: string;
}
interface ListQuery {
  page?: number;
  limit?: number;
  status?: string;
  server_id?: string;
  search?: string;
  sort_by?: string;
  sort_order?: string;
}

/** NewRemora's success envelope. */
function envelope(data: unknown) {
  return { success: true, data, error: null, timestamp: new Date().toISOString() };
}

/** NewRemora's job object. */
export function newRemoraJob(task: schedulerV1.Task) {
  return {
    id: task.uid,
    type: task.kind,
    command: task.kind === 'command' ? task.command : null,
    args: task.kind === 'command' ? task.argsText : null,
    ...(task.kind === 'script' ? { script: task.script, shell: task.shell } : {}),
    status: task.status,
    server_id: task.serverUid,
    server: { id: task.serverUid, name: task.serverName, hostname: task.serverHostname },
    priority: task.priority,
    created_at: isoTime(task.createdAt),
    started_at: isoTime(task.startedAt),
    finished_at: isoTime(task.endedAt),
    exit_code: task.exitCode ?? null,
    timeout: task.timeoutSeconds,
    attempt: task.attempt,
    reason: task.reasonCode || null,
    error: task.reason || null,
    duplicated_from: task.duplicatedFromUid || null,
  };
}

function argsOf(args: string | string[] | undefined): { args: string[]; argsText: string } {
  if (Array.isArray(args)) return { args, argsText: '' };
  return { args: [], argsText: args ?? '' };
}

function lastEventIdOf(request: FastifyRequest<{ Querystring: { last_event_id?: string } }>): number | undefined {
  const header = request.headers['last-event-id'];
  const value = (Array.isArray(header) ? header[0] : header) ?? request.query.last_event_id;
  const id = Number(value);
  return Number.isSafeInteger(id) && id > 0 ? id : undefined;
}

/** NewRemora's jobs, in the caller's default organisation: tasks of the scheduler, output from LOGS. */
export async function jobRoutes(app: FastifyInstance, options: { bus: Bus; inlineOutputBytes: number }): Promise<void> {
  const { bus, inlineOutputBytes } = options;
  const tasks = createClient(bus, schedulerV1.Tasks);
  const config = { dialect: 'newremora' } as const;
  const get = async (request: FastifyRequest, id: string) => (await tasks.get({ caller: callerOf(request), uid: id })).task!;

  app.post<{ Body: CommandBody }>('/api/v1/jobs', {
    config,
    onRequest: app.authenticate,
    schema: { body: { type: 'object', required: ['command', 'server_id'], properties: { command: { type: 'string', minLength: 1, maxLength: 65536 }, args: argsSchema, ...common } } },
  }, async (request, reply) => {
    const body = request.body;
    const { task } = await tasks.submit({
      ...submission(request, body),
      kind: 'command',
      command: body.command,
      ...argsOf(body.args),
    });
    reply.status(201);
    return envelope(newRemoraJob(task!));
  });

  app.post<{ Body: ScriptBody }>('/api/v1/jobs/script', {
    config,
    onRequest: app.authenticate,
    schema: { body: { type: 'object', required: ['script', 'server_id'], properties: { script: { type: 'string', minLength: 1, maxLength: 1048576 }, shell: { type: 'string', minLength: 1, maxLength: 200 }, ...common } } },
  }, async (request, reply) => {
    const body = request.body;
    const { task } = await tasks.submit({
      ...submission(request, body),
      kind: 'script',
      script: body.script,
      shell: body.shell ?? '/bin/bash',
    });
    reply.status(201);
    return envelope(newRemoraJob(task!));
  });

  app.get<{ Querystring: ListQuery }>('/api/v1/jobs', {
    config,
    onRequest: app.authenticate,
    schema: {
      querystring: {
        type: 'object',
        properties: {
          page: { type: 'integer', minimum: 1 },
          limit: { type: 'integer', minimum: 1 },
          status: { type: 'string', enum: ['queued', 'running', 'completed', 'failed', 'canceled', 'cancelled', 'timed_out'] },
          server_id: uuid,
          search: { type: 'string', maxLength: 500 },
          sort_by: { type: 'string', enum: ['created_at', 'started_at', 'finished_at'] },
          sort_order: { type: 'string', enum: ['asc', 'desc'] },
        },
      },
    },
  }, async (request) => {
    const query = request.query;
    const page = query.page ?? 1;
    const limit = Math.min(query.limit ?? 20, 100);
    const { tasks: found, pageInfo } = await tasks.list({
      caller: callerOf(request),
      page: { page, limit },
      status: query.status ?? '',
      serverUid: query.server_id ?? '',
      search: query.search ?? '',
      sortBy: query.sort_by ?? 'created_at',
      sortOrder: query.sort_order ?? 'desc',
    });
    const total = pageInfo?.total ?? 0;
    const totalPages = Math.ceil(total / limit);
    return envelope({
      jobs: found.map(newRemoraJob),
      pagination: { page, limit, total, total_pages: totalPages, has_next: page < totalPages, has_prev: page > 1 },
    });
  });

  app.get<{ Params: { id: string } }>('/api/v1/jobs/:id', { config, onRequest: app.authenticate, schema: { params } }, async (request) => {
    const task = await get(request, request.params.id);
    return envelope({ ...newRemoraJob(task), ...(await readOutputTail(bus, task.uid, task.attempt, inlineOutputBytes)) });
  });

  app.post<{ Params: { id: string } }>('/api/v1/jobs/:id/cancel', { config, onRequest: app.authenticate, schema: { params } }, async (request, reply) => {
    const { task, canceledAt } = await tasks.cancel({ caller: callerOf(request), uid: request.params.id });
    // A queued job ends at once; a running one is stopped by its executor, and its status follows.
    if (!canceledAt) reply.status(202);
    return envelope({
      id: task!.uid,
      status: task!.status,
      canceled_at: canceledAt ? timestampDate(canceledAt).toISOString() : null,
      cancel_requested_at: isoTime(task!.cancelRequestedAt),
    });
  });

  app.post<{ Params: { id: string }; Body: DuplicateBody | undefined }>('/api/v1/jobs/:id/duplicate', {
    config,
    onRequest: app.authenticate,
    schema: {
      params,
      body: {
        anyOf: [
          { type: 'null' },
          { type: 'object', properties: { server_id: uuid, timeout: common.timeout, priority: common.priority, command: { type: 'string', minLength: 1, maxLength: 65536 }, args: argsSchema, script: { type: 'string', minLength: 1, maxLength: 1048576 }, shell: { type: 'string', minLength: 1, maxLength: 200 } } },
        ],
      },
    },
  }, async (request, reply) => {
    const body = request.body ?? {};
    const args = body.args === undefined ? {} : Array.isArray(body.args) ? { args: body.args, setArgs: true } : { argsText: body.args, setArgs: true };
    const { original, task } = await tasks.duplicate({
      caller: callerOf(request),
      uid: request.params.id,
      serverUid: body.server_id,
      timeoutSeconds: body.timeout,
      priority: body.priority,
      command: body.command,
      script: body.script,
      shell: body.shell,
      ...args,
    });
    reply.status(201);
    return envelope({ original_job: { id: original!.uid, command: original!.kind === 'command' ? original!.command : null }, new_job: newRemoraJob(task!) });
  });

  for (const field of ['logs', 'stdout', 'stderr'] as const) {
    app.get<{ Params: { id: string } }>(`/api/v1/jobs/:id/${field}`, { config, onRequest: app.authenticate, schema: { params } }, async (request, reply) => {
      const task = await get(request, request.params.id);
      reply.type('application/json; charset=utf-8');
      return reply.send(await outputDocument(bus, task, field));
    });
  }

  app.get<{ Params: { id: string }; Querystring: { last_event_id?: string } }>('/api/v1/jobs/:id/stream', {
    config,
    onRequest: app.authenticate,
    schema: { params, querystring: { type: 'object', properties: { last_event_id: { type: 'string', pattern: '^[0-9]+$' } } } },
  }, async (request, reply) => {
    // Authorised (and 404 for another organisation's job) before the stream opens.
    const job = await get(request, request.params.id);
    await streamJob(request, reply, { bus, job, lastEventId: lastEventIdOf(request) });
  });
}
