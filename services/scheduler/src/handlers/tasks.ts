import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { BusError, implement, STREAMS, type Bus, type BusLogger, type Registration } from '@runnerhub/bus';
import { executorV1, schedulerV1, type Caller } from '@runnerhub/contracts';
import { publishStatus } from '../adapters/followers.js';
import type { OrganizationAccess, ServerDirectory } from '../domain/access.js';
import type { Lifecycle } from '../domain/lifecycle.js';
import { DEFAULT_PRIORITY, FINAL_STATUSES, type TaskInput, type Tasks, type TaskStatusName } from '../domain/tasks.js';
import { pageOf, toTaskMessage } from './mapping.js';

export interface TaskHandlerDeps {
  bus: Bus;
  logger: BusLogger;
  tasks: Tasks;
  lifecycle: Lifecycle;
  access: OrganizationAccess;
  servers: ServerDirectory;
  /** Tells the dispatcher a task was accepted for this server. */
  accepted(serverUid: string): void;
  activeExecutors(): number;
  totalCapacity: number;
}

function requireCaller(caller: Caller | undefined): Caller {
  if (!caller?.userUid) throw new BusError('AUTH_REQUIRED', 'authentication required');
  return caller;
}

function inputOf(request: schedulerV1.SubmitTaskRequest): TaskInput {
  if (request.kind !== 'command' && request.kind !== 'script') throw BusError.validation('kind must be command or script', 'kind');
  return {
    kind: request.kind,
    command: request.command,
    args: request.args,
    argsText: request.argsText,
    script: request.script,
    shell: request.shell,
    env: request.env,
    timeoutSeconds: request.timeoutSeconds,
    priority: request.priority,
    safeToRetry: request.safeToRetry,
  };
}

export function taskHandlers(deps: TaskHandlerDeps): Registration {
  const { tasks, lifecycle, access, servers } = deps;
  return implement(schedulerV1.Tasks, {
    async submit(request) {
      const caller = requireCaller(request.caller);
      const organizationId = await access.organizationOf(caller, request.organizationRef, 'operator');
      if (!request.serverUid) throw BusError.validation('server_id is required', 'server_id');
      const input = inputOf(request);
      const server = await servers.serverOf(caller, organizationId, request.serverUid);
      const task = await tasks.submit(organizationId, caller.userUid, server, input);
      deps.accepted(server.uid);
      return { task: toTaskMessage(task) };
    },
    async list(request) {
      const organizationId = await access.organizationOf(requireCaller(request.caller), request.organizationRef, 'viewer');
      const { page, limit } = pageOf(request.page, 20);
      const { tasks: found, total } = await tasks.list(organizationId, { page, limit, status: request.status, serverUid: request.serverUid, search: request.search, sortBy: request.sortBy, sortOrder: request.sortOrder });
      return { tasks: found.map(toTaskMessage), pageInfo: { page, limit, total, pages: Math.ceil(total / limit) } };
    },
    async get(request) {
      const organizationId = await access.organizationOf(requireCaller(request.caller), request.organizationRef, 'viewer');
      return { task: toTaskMessage(await tasks.get(organizationId, request.uid)) };
    },
    async cancel(request) {
      const caller = requireCaller(request.caller);
      const organizationId = await access.organizationOf(caller, request.organizationRef, 'operator');
      const task = await tasks.get(organizationId, request.uid);
      if (FINAL_STATUSES.includes(task.status as TaskStatusName)) throw new BusError('RESOURCE_CONFLICT', `the job already ended (${task.status})`);
      const queued = await lifecycle.cancelQueued(task.id, caller.username || caller.userUid);
      const cancelRequest = toBinary(executorV1.JobCancelRequestedSchema, create(executorV1.JobCancelRequestedSchema, { jobId: task.id, organizationUid: organizationId, requestedByUid: caller.userUid, at: timestampFromDate(new Date()) }));
      const js = deps.bus.jetstream();
      if (queued) {
        // Withdraw its dispatch if no executor took it yet; if one did, it is told to stop.
        if (queued.dispatchSeq !== null) {
          const jsm = await deps.bus.jetstreamManager();
          await jsm.streams.deleteMessage(STREAMS.JOBS.name, Number(queued.dispatchSeq), false).catch(() => false);
          await js.publish(`events.job.${task.id}.cancel`, cancelRequest, { msgID: `${task.id}.cancel` }).catch((error: unknown) => deps.logger.warn({ err: error, task: task.id }, 'cancel request not published'));
        }
        await publishStatus(deps.bus, { jobId: task.id, organizationUid: organizationId, attempt: queued.attempt, status: executorV1.JobStatus.CANCELED, reasonCode: 'canceled', reason: 'canceled before it started', endedAt: timestampFromDate(new Date()) }, `${task.id}.${queued.attempt}.scheduler.canceled`).catch(
          (error: unknown) => deps.logger.warn({ err: error, task: task.id }, 'canceled status not published'),
        );
        const canceled = await tasks.get(organizationId, task.id);
        return { task: toTaskMessage(canceled), canceledAt: timestampFromDate(canceled.endedAt ?? new Date()) };
      }
      // Running: its executor stops it; the status follows the executor's final report.
      await lifecycle.markCancelRequested(task.id);
      await js.publish(`events.job.${task.id}.cancel`, cancelRequest, { msgID: `${task.id}.cancel` });
      return { task: toTaskMessage(await tasks.get(organizationId, task.id)) };
    },
    async duplicate(request) {
      const caller = requireCaller(request.caller);
      const organizationId = await access.organizationOf(caller, request.organizationRef, 'operator');
      const original = await tasks.get(organizationId, request.uid);
      const serverUid = request.serverUid ?? original.serverId;
      const server = await servers.serverOf(caller, organizationId, serverUid);
      const overridesArgs = request.setArgs || request.argsText !== undefined;
      const input: TaskInput = {
        kind: original.kind,
        command: request.command ?? original.command,
        args: overridesArgs ? request.args : original.args,
        argsText: overridesArgs ? (request.argsText ?? '') : original.argsText,
        script: request.script ?? original.script,
        shell: request.shell ?? original.shell,
        env: (original.env ?? {}) as Record<string, string>,
        timeoutSeconds: request.timeoutSeconds ?? original.timeoutSeconds,
        priority: request.priority ?? original.priority ?? DEFAULT_PRIORITY,
        safeToRetry: original.safeToRetry,
      };
      const task = await tasks.submit(organizationId, caller.userUid, server, input, original.id);
      deps.accepted(server.uid);
      return { original: toTaskMessage(original), task: toTaskMessage(task) };
    },
    async stats(request) {
      const organizationId = await access.organizationOf(requireCaller(request.caller), request.organizationRef, 'viewer');
      const stats = await tasks.stats(organizationId);
      return {
        total: BigInt(stats.total),
        queued: BigInt(stats.queued),
        running: BigInt(stats.running),
        completed: BigInt(stats.completed),
        failed: BigInt(stats.failed),
        canceled: BigInt(stats.canceled),
        averageDurationSeconds: stats.averageDurationSeconds,
        lastHour: BigInt(stats.lastHour),
        activeExecutors: deps.activeExecutors(),
        totalCapacity: deps.totalCapacity,
      };
    },
  });
}
