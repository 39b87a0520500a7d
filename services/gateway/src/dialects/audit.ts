import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { FastifyInstance } from 'fastify';
import { createClient, type Bus } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import { callerOf, isoTime } from './shared.js';

interface AuditQuery {
  page?: number;
  limit?: number;
  actor?: string;
  action?: string;
  outcome?: string;
  startDate?: string;
  endDate?: string;
}

// ISO 8601 as the other RunnerHub filters take it: a full timestamp or a day (its UTC midnight).
const isoDate = { type: 'string', anyOf: [{ format: 'date-time' }, { format: 'date' }] } as const;

/** GET /api/security/audit-logs (RunnerHub): the caller's organisation's audit log, newest first. */
export async function auditRoutes(app: FastifyInstance, options: { bus: Bus }): Promise<void> {
  const audit = createClient(options.bus, identityV1.Audit);

  app.get<{ Querystring: AuditQuery }>('/api/security/audit-logs', {
    config: { dialect: 'runnerhub' },
    onRequest: app.authenticate,
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          page: { type: 'integer', minimum: 1, maximum: 1_000_000 },
          limit: { type: 'integer', minimum: 1, maximum: 100 },
          actor: { type: 'string', format: 'uuid' },
          action: { type: 'string', minLength: 1, maxLength: 300 },
          outcome: { type: 'string', enum: ['success', 'denied', 'failure'] },
          startDate: isoDate,
          endDate: isoDate,
        },
      },
    },
  }, async (request) => {
    const query = request.query;
    const { records, pageInfo } = await audit.list({
      caller: callerOf(request),
      page: { page: query.page ?? 1, limit: query.limit ?? 20 },
      actorUid: query.actor ?? '',
      action: query.action ?? '',
      outcome: query.outcome ?? '',
      from: query.startDate ? timestampFromDate(new Date(query.startDate)) : undefined,
      to: query.endDate ? timestampFromDate(new Date(query.endDate)) : undefined,
    });
    const page = pageInfo?.page ?? 1;
    const pages = pageInfo?.pages ?? 0;
    return {
      logs: records.map((record) => ({
        id: record.id,
        timestamp: isoTime(record.at),
        actor: { id: record.actorUid || null, username: record.actorUsername || null },
        organizationId: record.organizationUid || null,
        action: record.action,
        target: record.target,
        outcome: record.outcome,
        statusCode: record.statusCode,
        clientAddress: record.clientAddress,
        traceId: record.traceId || null,
        requestId: record.requestId,
      })),
      pagination: { page, limit: pageInfo?.limit ?? 20, total: pageInfo?.total ?? 0, pages, hasNext: page < pages, hasPrev: page > 1 },
    };
  });
}
