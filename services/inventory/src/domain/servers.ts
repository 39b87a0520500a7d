import { BusError } from '@runnerhub/bus';
import type { InventoryDb } from '../adapters/database.js';
import type { Prisma } from '../generated/prisma/client.js';
import type { Credentials, SealedCredential } from './credentials.js';
import { conflictOnName, whereKey, whereUid, type RecordKey } from './keys.js';
import {
  isUuid,
  validateDescription,
  validateHostname,
  validateMaxSessions,
  validateName,
  validateNodeType,
  validatePort,
  validateStatus,
  validateTags,
  validateUsername,
} from './validation.js';

export interface ServerInput {
  name: string;
  hostname: string;
  port: number;
  username: string;
  authType: string;
  password: string;
  privateKey: string;
  description: string;
  tags: readonly string[];
  status: string;
  nodeType: string;
  /** "pem://<uid>" of an uploaded key (NewRemora's pem_file_url): logs in with that key. */
  pemFileRef?: string;
  /** SSH sessions the platform runs at once on the server (its sshd's MaxSessions); absent: the platform default. */
  maxSessions?: number;
}

export type ServerChanges = Partial<ServerInput> & {
  /** Clears the recorded host key: the next connection records the one the server offers. */
  acceptHostKey?: boolean;
  /** Unsets max_sessions: the platform default applies again. */
  clearMaxSessions?: boolean;
};

/**
 * Told after a server's record changed in a way that matters to whoever
 * caches it (the app publishes a ServerChanged event).
 */
export type ServerChanged = (organizationId: string, serverUid: string, deleted: boolean) => void;

export interface PemFileRecord {
  id: string;
  filename: string;
  size: number;
  createdAt: Date;
}

/** NewRemora's upload-pem cap: a private key is a few KiB at most. */
export const MAX_PEM_BYTES = 64 * 1024;
const PEM_REF = /^pem:\/\/([0-9a-fA-F-]{36})$/;

export function pemRefOf(id: string): string {
  return `pem://${id}`;
}

/** What an executor needs to log in to a server: never shown to users. */
export interface ResolvedCredential {
  host: string;
  port: number;
  username: string;
  authType: 'password' | 'key';
  password: string;
  privateKey: string;
  hostKeyFingerprint: string;
}

export interface ServerQuery {
  page: number;
  limit: number;
  search: string;
  activeOnly: boolean;
}

const include = { groups: { select: { groupId: true } } } as const;
export type ServerRecord = Prisma.ServerGetPayload<{ include: typeof include }>;

/** A Remote (SSH) node needs an address; anything with a credential needs a user to log in as. */
function checkComplete(fields: { nodeType: string; hostname: string; username: string; authType: string | null }): void {
  if (fields.nodeType === 'Remote' && !fields.hostname) throw BusError.validation('hostname is required for a Remote server', 'hostname');
  if (fields.authType && !fields.username) throw BusError.validation('username is required with a password or key', 'username');
}

function credentialColumns(credential: SealedCredential | null) {
  return { authType: credential?.authType ?? null, sealedCredential: credential?.sealed ?? null, maskedCredential: credential?.masked ?? '' };
}

/** The new max_sessions of an update: cleared, replaced or kept. */
function maxSessionsAfter(changes: ServerChanges, current: number | null): number | null {
  if (changes.clearMaxSessions && changes.maxSessions !== undefined) throw BusError.validation('send max_sessions or clear_max_sessions, not both', 'max_sessions');
  if (changes.clearMaxSessions) return null;
  return changes.maxSessions === undefined ? current : validateMaxSessions(changes.maxSessions);
}

/** Servers of one organisation; callers pass an organisation they are already authorised in. */
export class Servers {
  constructor(
    private readonly db: InventoryDb,
    private readonly credentials: Credentials,
    // No listener by default: tests that serve inventory without announcing changes (the executor's) need none.
    private readonly serverChanged: ServerChanged = () => {},
  ) {}

  async create(organizationId: string, input: ServerInput): Promise<ServerRecord> {
    const fields = {
      name: validateName(input.name),
      hostname: validateHostname(input.hostname),
      port: validatePort(input.port),
      username: validateUsername(input.username),
      description: validateDescription(input.description),
      tags: validateTags(input.tags),
      status: validateStatus(input.status),
      nodeType: validateNodeType(input.nodeType),
      maxSessions: input.maxSessions === undefined ? null : validateMaxSessions(input.maxSessions),
    };
    const credential = this.credentials.seal(await this.withPemFile(organizationId, input));
    checkComplete({ ...fields, authType: credential?.authType ?? null });
    return this.db.server
      .create({ data: { organizationId, ...fields, ...credentialColumns(credential) }, include })
      .catch((error: unknown) => conflictOnName(error, 'server'));
  }

  async list(organizationId: string, query: ServerQuery): Promise<{ servers: ServerRecord[]; total: number }> {
    const search = query.search.trim();
    const where: Prisma.ServerWhereInput = {
      organizationId,
      ...(query.activeOnly ? { status: 'active' } : {}),
      ...(search ? { OR: [{ name: { contains: search, mode: 'insensitive' } }, { hostname: { contains: search, mode: 'insensitive' } }] } : {}),
    };
    const [servers, total] = await this.db.$transaction([
      this.db.server.findMany({ where, include, orderBy: { number: 'asc' }, skip: (query.page - 1) * query.limit, take: query.limit }),
      this.db.server.count({ where }),
    ]);
    return { servers, total };
  }

  async get(organizationId: string, key: RecordKey): Promise<ServerRecord> {
    const server = await this.db.server.findFirst({ where: { organizationId, ...whereKey(key, 'server') }, include });
    if (!server) throw BusError.notFound('server');
    return server;
  }

  async update(organizationId: string, key: RecordKey, changes: ServerChanges): Promise<ServerRecord> {
    const current = await this.get(organizationId, key);
    const fields = {
      name: changes.name === undefined ? current.name : validateName(changes.name),
      hostname: changes.hostname === undefined ? current.hostname : validateHostname(changes.hostname),
      port: changes.port === undefined ? current.port : validatePort(changes.port),
      username: changes.username === undefined ? current.username : validateUsername(changes.username),
      description: changes.description === undefined ? current.description : validateDescription(changes.description),
      tags: changes.tags === undefined ? current.tags : validateTags(changes.tags),
      status: changes.status === undefined ? current.status : validateStatus(changes.status),
      nodeType: changes.nodeType === undefined ? current.nodeType : validateNodeType(changes.nodeType),
      maxSessions: maxSessionsAfter(changes, current.maxSessions),
    };
    // A new secret or a new auth type replaces the credential; otherwise the sealed one stays.
    const replacesCredential = Boolean(changes.password || changes.privateKey || changes.pemFileRef) || (changes.authType !== undefined && changes.authType !== (current.authType ?? ''));
    const credential = replacesCredential
      ? credentialColumns(
          this.credentials.seal(
            await this.withPemFile(organizationId, { authType: changes.authType ?? '', password: changes.password ?? '', privateKey: changes.privateKey ?? '', pemFileRef: changes.pemFileRef ?? '' }),
          ),
        )
      : undefined;
    checkComplete({ ...fields, authType: credential ? credential.authType : current.authType });
    const hostKey = changes.acceptHostKey ? { hostKeyFingerprint: null } : {};
    const server = await this.db.server
      .update({ where: { id: current.id }, data: { ...fields, ...credential, ...hostKey }, include })
      .catch((error: unknown) => conflictOnName(error, 'server'));
    this.serverChanged(organizationId, server.id, false);
    return server;
  }

  /**
   * The decrypted credential of a server of `organizationId`. A server of
   * another organisation, or a malformed uid, is simply not found.
   */
  async resolveCredential(organizationId: string, serverUid: string): Promise<ResolvedCredential> {
    if (!isUuid(organizationId)) throw BusError.notFound('server');
    const server = await this.db.server.findFirst({ where: { organizationId, ...whereKey({ uid: serverUid }, 'server') } });
    if (!server) throw BusError.notFound('server');
    if (server.nodeType !== 'Remote' || !server.hostname) throw BusError.validation('the server is not a Remote (SSH) server', 'server_uid');
    if (!server.authType || !server.sealedCredential) throw BusError.validation('the server has no stored password or private key', 'credential_id');
    const secret = this.credentials.open(server.sealedCredential);
    return {
      host: server.hostname,
      port: server.port,
      username: server.username,
      authType: server.authType,
      password: server.authType === 'password' ? secret : '',
      privateKey: server.authType === 'key' ? secret : '',
      hostKeyFingerprint: server.hostKeyFingerprint ?? '',
    };
  }

  /**
   * Trust on first use: stores `fingerprint` when the server has none (in
   * one conditional update, so two executors racing agree); the same one
   * again is fine; a different one is RESOURCE_CONFLICT (details
   * HOST_KEY_CHANGED) until an operator accepts the new key.
   */
  async recordHostKey(organizationId: string, serverUid: string, fingerprint: string): Promise<{ fingerprint: string; recorded: boolean }> {
    if (!/^SHA256:[A-Za-z0-9+/]{43}$/.test(fingerprint)) throw BusError.validation('fingerprint must be "SHA256:<base64>" as OpenSSH prints it', 'fingerprint');
    if (!isUuid(organizationId)) throw BusError.notFound('server');
    const where = { organizationId, ...whereUid(serverUid, 'server') };
    const { count } = await this.db.server.updateMany({ where: { ...where, hostKeyFingerprint: null }, data: { hostKeyFingerprint: fingerprint } });
    if (count === 1) {
      this.serverChanged(organizationId, where.id, false);
      return { fingerprint, recorded: true };
    }
    const server = await this.db.server.findFirst({ where, select: { hostKeyFingerprint: true } });
    if (!server) throw BusError.notFound('server');
    if (server.hostKeyFingerprint !== fingerprint) {
      throw new BusError(
        'RESOURCE_CONFLICT',
        `the host key of the server changed: ${server.hostKeyFingerprint ?? ''} is recorded, the server offered ${fingerprint}; accept the new key if the change is expected`,
        'HOST_KEY_CHANGED',
        'fingerprint',
      );
    }
    return { fingerprint, recorded: false };
  }

  /**
   * The verdict of a connectivity check (executor-only): health status and
   * time of the last check. Only a change of health status is announced:
   * the time of a check matters to no cache.
   */
  async recordHealth(organizationId: string, serverUid: string, healthy: boolean, checkedAt: Date): Promise<void> {
    if (!isUuid(organizationId)) throw BusError.notFound('server');
    const where = { organizationId, ...whereUid(serverUid, 'server') };
    const healthStatus = healthy ? 'healthy' : 'unhealthy';
    const changed = await this.db.server.updateMany({ where: { ...where, NOT: { healthStatus } }, data: { healthStatus, lastHealthCheckAt: checkedAt } });
    if (changed.count === 1) {
      this.serverChanged(organizationId, where.id, false);
      return;
    }
    const { count } = await this.db.server.updateMany({ where, data: { lastHealthCheckAt: checkedAt } });
    if (count === 0) throw BusError.notFound('server');
  }

  /** NewRemora's upload-pem: validated as an unencrypted private key, stored sealed, never returned. */
  async uploadPemFile(organizationId: string, filename: string, content: Uint8Array): Promise<PemFileRecord> {
    if (content.length === 0 || content.length > MAX_PEM_BYTES) throw BusError.validation(`pem_file must be 1-${MAX_PEM_BYTES} bytes`, 'pem_file');
    const name = (filename.split(/[\\/]/).pop() ?? '').trim().slice(0, 255) || 'key.pem';
    let sealed: SealedCredential | null;
    try {
      sealed = this.credentials.seal({ authType: 'key', password: '', privateKey: Buffer.from(content).toString('utf8') });
    } catch {
      throw BusError.validation('pem_file must be an unencrypted private key (PEM or OpenSSH format)', 'pem_file');
    }
    return this.db.pemFile.create({
      data: { organizationId, filename: name, size: content.length, sealedKey: sealed!.sealed },
      select: { id: true, filename: true, size: true, createdAt: true },
    });
  }

  /** A credential input with its pem_file_ref replaced by the key it names (of this organisation only). */
  private async withPemFile<T extends { authType: string; password: string; privateKey: string; pemFileRef?: string }>(organizationId: string, input: T): Promise<T> {
    if (!input.pemFileRef) return input;
    const id = PEM_REF.exec(input.pemFileRef.trim())?.[1];
    if (!id) throw BusError.validation('pem_file_url must be the "pem://<id>" an upload answered', 'pem_file_url');
    if (input.privateKey || input.password) throw BusError.validation('pem_file_url replaces private_key and password: send only one', 'pem_file_url');
    if (input.authType && input.authType !== 'key') throw BusError.validation('pem_file_url needs auth_type key', 'auth_type');
    const file = await this.db.pemFile.findFirst({ where: { id: id.toLowerCase(), organizationId } });
    if (!file) throw BusError.notFound('pem file');
    return { ...input, authType: 'key', privateKey: this.credentials.open(file.sealedKey) };
  }

  async delete(organizationId: string, key: RecordKey): Promise<void> {
    // Read first: a biRun delete names the server by number, the event by uid.
    const server = await this.db.server.findFirst({ where: { organizationId, ...whereKey(key, 'server') }, select: { id: true } });
    if (!server) throw BusError.notFound('server');
    const { count } = await this.db.server.deleteMany({ where: { id: server.id } });
    if (count === 0) throw BusError.notFound('server');
    this.serverChanged(organizationId, server.id, true);
  }
}
