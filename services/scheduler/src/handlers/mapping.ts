import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { schedulerV1 } from '@runnerhub/contracts';
import type { TaskRecord } from '../domain/tasks.js';

const time = (date: Date | null) => (date ? timestampFromDate(date) : undefined);

export function toTaskMessage(task: TaskRecord): MessageInitShape<typeof schedulerV1.TaskSchema> {
  return {
    uid: task.id,
    number: BigInt(task.number),
    organizationUid: task.organizationId,
    serverUid: task.serverId,
    kind: task.kind,
    command: task.command,
    args: task.args,
    argsText: task.argsText,
    script: task.script,
    shell: task.shell,
    env: (task.env ?? {}) as Record<string, string>,
    timeoutSeconds: task.timeoutSeconds,
    priority: task.priority,
    status: task.status,
    exitCode: task.exitCode ?? undefined,
    reasonCode: task.reasonCode,
    reason: task.reason,
    attempt: task.attempt,
    safeToRetry: task.safeToRetry,
    executorId: task.executorId,
    createdAt: time(task.createdAt),
    startedAt: time(task.startedAt),
    endedAt: time(task.endedAt),
    createdByUid: task.createdBy,
    duplicatedFromUid: task.duplicatedFrom ?? '',
    cancelRequestedAt: time(task.cancelRequestedAt),
    outputChunks: BigInt(task.outputChunks),
    serverName: task.serverName,
    serverHostname: task.serverHostname,
  };
}

export function pageOf(page: { page: number; limit: number } | undefined, defaultLimit: number): { page: number; limit: number } {
  return { page: Math.max(page?.page || 1, 1), limit: Math.min(Math.max(page?.limit || defaultLimit, 1), 100) };
}
