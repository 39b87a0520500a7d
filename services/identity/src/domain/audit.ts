import { BusError } from '@runnerhub/bus';
import { recordsetJson } from '@runnerhub/database';
import type pg from 'pg';
import type { IdentityDb } from '../adapters/database.js';
import type { AuditLog as AuditRow, Prisma } from '../generated/prisma/client.js';

export type { AuditRow };

const OUTCOMES = ['success', 'denied', 'failure'] as const;
/** The organisation the initial admin runs the platform from (see Accounts.ensureInitialAdmin). */
const PLATFORM_ORGANIZATION = 'default';
const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One state-changing call, as the gateway saw it. */
export interface AuditEntry {
  id: string;
  at: Date;
  actorUid: string;
  actorUsername: string;
  organizationUid: string;
  action: string;
  target: string;
  outcome: string;
  statusCode: number;
  clientAddress: string;
  traceId: string;
  requestId: string;
}

export interface AuditCaller {
  userUid: string;
  organizationUid: string;
}

export interface AuditQuery {
  page: number;
  limit: number;
  actorUid: string;
  /** Matches actions that start with it: "POST" or "POST /api/auth/login". */
  action: string;
  outcome: string;
  from?: Date;
  to?: Date;
}

/** Whether an entry can be stored at all; one that cannot would otherwise be redelivered forever. */
export function isStorable(entry: AuditEntry): boolean {
  return (
    UUID.test(entry.id) &&
    !Number.isNaN(entry.at.getTime()) &&
    (entry.actorUid === '' || UUID.test(entry.actorUid)) &&
    (entry.organizationUid === '' || UUID.test(entry.organizationUid)) &&
    (OUTCOMES as readonly string[]).includes(entry.outcome) &&
    Number.isInteger(entry.statusCode) && entry.statusCode >= 100 && entry.statusCode <= 599
  );
}

/**
 * The caller must be an admin of the organisation the token names, as the
 * database says now (a role in an older token may have been taken away).
 * Admins of the platform organisation also see calls made without an
 * organisation: logins, registrations, requests rejected before authentication.
 */
async function requireAuditReader(db: IdentityDb, caller: AuditCaller): Promise<{ platform: boolean }> {
  if (!caller.userUid) throw new BusError('AUTH_REQUIRED', 'authentication required');
  const denied = new BusError('PERMISSION_DENIED', 'reading the audit log needs the admin role in this organization');
  if (!UUID.test(caller.userUid) || !UUID.test(caller.organizationUid)) throw denied;
  const membership = await db.membership.findUnique({
    where: { userId_organizationId: { userId: caller.userUid, organizationId: caller.organizationUid } },
    select: { role: true, user: { select: { active: true } }, organization: { select: { shortName: true } } },
  });
  if (membership?.role !== 'admin' || !membership.user.active) throw denied;
  return { platform: membership.organization.shortName === PLATFORM_ORGANIZATION };
}

const APPEND = `
  INSERT INTO audit_logs (id, at, actor_id, actor_username, organization_id, action, target, outcome, status_code, client_address, trace_id, request_id)
  SELECT id, at, actor_id, actor_username, organization_id, action, target, outcome, status_code, client_address, trace_id, request_id
  FROM json_populate_recordset(NULL::audit_logs, $1::json)
  ON CONFLICT (id) DO NOTHING`;

/** The append-only audit log: records are inserted once and never changed (the table refuses it). */
export class AuditLog {
  constructor(
    private readonly db: IdentityDb,
    /** The pool under `db`, for the insert. */
    private readonly pool: pg.Pool,
  ) {}

  /**
   * Stores entries in one statement; an id already stored (a redelivery) is
   * skipped. Raw SQL straight through pg, as a named statement: every
   * mutating request is audited, and Prisma (createMany's query compilation,
   * then even $executeRaw's) cost more CPU than PostgreSQL's insert.
   */
  async append(entries: AuditEntry[]): Promise<number> {
    const { rowCount } = await this.pool.query({ name: 'append-audit-logs', text: APPEND, values: [recordsetJson(entries.map(toRow))] });
    return rowCount ?? 0;
  }

  async list(caller: AuditCaller, query: AuditQuery): Promise<{ rows: AuditRow[]; total: number; page: number; limit: number }> {
    const { platform } = await requireAuditReader(this.db, caller);
    if (query.actorUid && !UUID.test(query.actorUid)) throw BusError.validation('actor must be a user id', 'actor_uid');
    if (query.outcome && !(OUTCOMES as readonly string[]).includes(query.outcome)) {
      throw BusError.validation(`outcome must be one of ${OUTCOMES.join(', ')}`, 'outcome');
    }
    const page = Math.max(1, query.page || 1);
    const limit = Math.min(MAX_LIMIT, Math.max(1, query.limit || DEFAULT_LIMIT));
    const organization = caller.organizationUid;
    const where: Prisma.AuditLogWhereInput = {
      AND: [
        platform ? { OR: [{ organizationId: organization }, { organizationId: null }] } : { organizationId: organization },
        query.actorUid ? { actorId: query.actorUid } : {},
        query.action ? { action: { startsWith: escapeLike(query.action) } } : {},
        query.outcome ? { outcome: query.outcome } : {},
        query.from || query.to ? { at: { gte: query.from, lte: query.to } } : {},
      ],
    };
    const [rows, total] = await Promise.all([
      this.db.auditLog.findMany({ where, orderBy: [{ at: 'desc' }, { id: 'desc' }], skip: (page - 1) * limit, take: limit }),
      this.db.auditLog.count({ where }),
    ]);
    return { rows, total, page, limit };
  }
}

// Prisma passes startsWith to LIKE as it is: % and _ in a filter must match themselves.
function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, '\\$&');
}

// PostgreSQL text cannot hold NUL, and nothing an HTTP client sends deserves unbounded room.
function clean(value: string, max: number): string {
  return value.replaceAll('\u0000', '').slice(0, max);
}

function toRow(entry: AuditEntry): Prisma.AuditLogCreateManyInput {
  return {
    id: entry.id,
    at: entry.at,
    actorId: entry.actorUid || null,
    actorUsername: clean(entry.actorUsername, 256),
    organizationId: entry.organizationUid || null,
    action: clean(entry.action, 512),
    target: clean(entry.target, 2048),
    outcome: entry.outcome,
    statusCode: entry.statusCode,
    clientAddress: clean(entry.clientAddress, 64),
    traceId: clean(entry.traceId, 64),
    requestId: clean(entry.requestId, 128),
  };
}
