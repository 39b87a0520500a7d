import { BusError } from '@runnerhub/bus';
import type { InventoryDb } from '../adapters/database.js';
import type { Prisma } from '../generated/prisma/client.js';
import { conflictOnName, whereKey, type RecordKey } from './keys.js';
import { isUuid, validateDescription, validateName } from './validation.js';

export interface ServerGroupInput {
  name: string;
  description: string;
  servers: readonly RecordKey[];
}

export interface ServerGroupChanges {
  name?: string;
  description?: string;
  servers?: readonly RecordKey[];
}

const include = { members: { include: { server: { select: { id: true, number: true } } }, orderBy: { server: { number: 'asc' } } } } as const;
export type ServerGroupRecord = Prisma.ServerGroupGetPayload<{ include: typeof include }>;

/** Named sets of one organisation's servers; a member from elsewhere is refused as unknown. */
export class ServerGroups {
  constructor(private readonly db: InventoryDb) {}

  async create(organizationId: string, input: ServerGroupInput): Promise<ServerGroupRecord> {
    const name = validateName(input.name);
    const description = validateDescription(input.description);
    const serverIds = await this.serverIds(organizationId, input.servers);
    return this.db.serverGroup
      .create({ data: { organizationId, name, description, members: { create: serverIds.map((serverId) => ({ serverId })) } }, include })
      .catch((error: unknown) => conflictOnName(error, 'server group'));
  }

  async list(organizationId: string): Promise<ServerGroupRecord[]> {
    return this.db.serverGroup.findMany({ where: { organizationId }, include, orderBy: { number: 'asc' } });
  }

  async get(organizationId: string, key: RecordKey): Promise<ServerGroupRecord> {
    const group = await this.db.serverGroup.findFirst({ where: { organizationId, ...whereKey(key, 'server group') }, include });
    if (!group) throw BusError.notFound('server group');
    return group;
  }

  async update(organizationId: string, key: RecordKey, changes: ServerGroupChanges): Promise<ServerGroupRecord> {
    const current = await this.get(organizationId, key);
    const data = {
      ...(changes.name === undefined ? {} : { name: validateName(changes.name) }),
      ...(changes.description === undefined ? {} : { description: validateDescription(changes.description) }),
    };
    const serverIds = changes.servers && (await this.serverIds(organizationId, changes.servers));
    const members = serverIds ? { deleteMany: {}, create: serverIds.map((serverId) => ({ serverId })) } : undefined;
    return this.db.serverGroup
      .update({ where: { id: current.id }, data: { ...data, members }, include })
      .catch((error: unknown) => conflictOnName(error, 'server group'));
  }

  async delete(organizationId: string, key: RecordKey): Promise<void> {
    const { count } = await this.db.serverGroup.deleteMany({ where: { organizationId, ...whereKey(key, 'server group') } });
    if (count === 0) throw BusError.notFound('server group');
  }

  /** The ids of the named servers; every one must exist in the organisation. */
  private async serverIds(organizationId: string, keys: readonly RecordKey[]): Promise<string[]> {
    const uids = [...new Set(keys.flatMap((key) => ('uid' in key ? [key.uid] : [])))];
    const numbers = [...new Set(keys.flatMap((key) => ('number' in key ? [key.number] : [])))];
    if (uids.some((uid) => !isUuid(uid))) throw BusError.validation('server_ids names a server that does not exist', 'server_ids');
    if (uids.length + numbers.length === 0) return [];
    const found = await this.db.server.findMany({ where: { organizationId, OR: [{ id: { in: uids } }, { number: { in: numbers } }] }, select: { id: true, number: true } });
    const missing = uids.some((uid) => !found.some((s) => s.id === uid)) || numbers.some((n) => !found.some((s) => s.number === n));
    if (missing) throw BusError.validation('server_ids names a server that does not exist', 'server_ids');
    return [...new Set(found.map((s) => s.id))];
  }
}
