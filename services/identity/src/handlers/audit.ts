import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { implement, type Registration } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import type { AuditLog, AuditRow } from '../domain/audit.js';

function toAuditMessage(row: AuditRow): MessageInitShape<typeof identityV1.AuditRecordSchema> {
  return {
    id: row.id,
    at: timestampFromDate(row.at),
    actorUid: row.actorId ?? '',
    actorUsername: row.actorUsername,
    organizationUid: row.organizationId ?? '',
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    statusCode: row.statusCode,
    clientAddress: row.clientAddress,
    traceId: row.traceId,
    requestId: row.requestId,
  };
}

export function auditHandlers(audit: AuditLog): Registration {
  return implement(identityV1.Audit, {
    async list(request) {
      const { rows, total, page, limit } = await audit.list(
        { userUid: request.caller?.userUid ?? '', organizationUid: request.caller?.organizationUid ?? '' },
        {
          page: request.page?.page ?? 0,
          limit: request.page?.limit ?? 0,
          actorUid: request.actorUid,
          action: request.action,
          outcome: request.outcome,
          from: request.from ? timestampDate(request.from) : undefined,
          to: request.to ? timestampDate(request.to) : undefined,
        },
      );
      return { records: rows.map(toAuditMessage), pageInfo: { page, limit, total, pages: Math.ceil(total / limit) } };
    },
  });
}
