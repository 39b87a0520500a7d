import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { BusError } from '@runnerhub/bus';
import type { inventoryV1 } from '@runnerhub/contracts';
import type { RecordKey } from '../domain/keys.js';
import type { ServerGroupRecord } from '../domain/server-groups.js';
import type { ServerRecord } from '../domain/servers.js';

/** A ServerRef or ServerGroupRef: uid or number, one of them required. */
export function recordKey(ref: inventoryV1.ServerRef | inventoryV1.ServerGroupRef | undefined, field: string): RecordKey {
  switch (ref?.ref.case) {
    case 'uid':
      return { uid: ref.ref.value };
    case 'number':
      return { number: ref.ref.value };
    default:
      throw BusError.validation(`${field} is required`, field);
  }
}

export function pageOf(page: { page: number; limit: number } | undefined, defaultLimit: number): { page: number; limit: number } {
  return { page: Math.max(page?.page || 1, 1), limit: Math.min(Math.max(page?.limit || defaultLimit, 1), 100) };
}

export function toServerMessage(server: ServerRecord): MessageInitShape<typeof inventoryV1.ServerSchema> {
  return {
    uid: server.id,
    number: server.number,
    organizationUid: server.organizationId,
    name: server.name,
    hostname: server.hostname,
    port: server.port,
    username: server.username,
    authType: server.authType ?? '',
    description: server.description,
    tags: server.tags,
    status: server.status,
    nodeType: server.nodeType,
    groupUids: server.groups.map((g) => g.groupId),
    hostKeyFingerprint: server.hostKeyFingerprint ?? '',
    maskedCredential: server.maskedCredential,
    healthStatus: server.healthStatus,
    lastHealthCheckAt: server.lastHealthCheckAt ? timestampFromDate(server.lastHealthCheckAt) : undefined,
    createdAt: timestampFromDate(server.createdAt),
    updatedAt: timestampFromDate(server.updatedAt),
    maxSessions: server.maxSessions ?? 0,
  };
}

export function toServerGroupMessage(group: ServerGroupRecord): MessageInitShape<typeof inventoryV1.ServerGroupSchema> {
  return {
    uid: group.id,
    number: group.number,
    organizationUid: group.organizationId,
    name: group.name,
    description: group.description,
    serverUids: group.members.map((m) => m.server.id),
    serverNumbers: group.members.map((m) => m.server.number),
    createdAt: timestampFromDate(group.createdAt),
    updatedAt: timestampFromDate(group.updatedAt),
  };
}
