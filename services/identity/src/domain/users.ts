import { BusError } from '@runnerhub/bus';
import type { IdentityDb } from '../adapters/database.js';
import { Prisma } from '../generated/prisma/client.js';
import { userWithOrganizations, type UserRecord } from './accounts.js';
import { parseRole, type Role } from './authorization.js';
import type { Organizations } from './organizations.js';
import type { PasswordHasher } from './passwords.js';
import type { Sessions } from './sessions.js';
import { normalizeEmail, validateFullName, validateUsername } from './validation.js';

export interface UserChanges {
  username?: string;
  email?: string;
  fullName?: string;
  role?: string;
  password?: string;
  active?: boolean;
}

export interface NewUser {
  username: string;
  password: string;
  role: string;
  email?: string;
  fullName?: string;
}

function conflict(error: unknown): never {
  if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
    const field = String(error.meta?.target ?? error.message).includes('email') ? 'email' : 'username';
    throw new BusError('RESOURCE_CONFLICT', `${field} is already taken`, '', field);
  }
  throw error;
}

/**
 * The users of an organisation, managed by its admins (RunnerHub's /api/users).
 * A user outside the admin's organisation does not exist for them.
 */
export class OrganizationUsers {
  constructor(
    private readonly db: IdentityDb,
    private readonly organizations: Organizations,
    private readonly passwords: PasswordHasher,
    private readonly sessions: Sessions,
    private readonly userChanged: (userId: string) => void,
  ) {}

  async list(adminId: string, organizationRef: string, query: { page: number; limit: number; role?: string }): Promise<{ users: UserRecord[]; total: number }> {
    const { organizationId } = await this.organizations.authorize(adminId, organizationRef, 'admin');
    const where = { memberships: { some: { organizationId, ...(query.role ? { role: parseRole(query.role) } : {}) } } };
    const [users, total] = await Promise.all([
      this.db.user.findMany({ where, include: userWithOrganizations, orderBy: { number: 'asc' }, skip: (query.page - 1) * query.limit, take: query.limit }),
      this.db.user.count({ where }),
    ]);
    return { users, total };
  }

  async create(adminId: string, organizationRef: string, input: NewUser): Promise<UserRecord> {
    const { organizationId } = await this.organizations.authorize(adminId, organizationRef, 'admin');
    const role = parseRole(input.role || 'viewer');
    const username = validateUsername(input.username);
    const email = input.email ? normalizeEmail(input.email) : null;
    this.passwords.validate(input.password);
    const passwordHash = await this.passwords.hash(input.password);
    const user = await this.db
      .$transaction(async (tx) => {
        const created = await tx.user.create({ data: { username, email, fullName: validateFullName(input.fullName ?? ''), passwordHash, defaultOrganizationId: organizationId } });
        await tx.membership.create({ data: { userId: created.id, organizationId, role } });
        return tx.user.findUniqueOrThrow({ where: { id: created.id }, include: userWithOrganizations });
      })
      .catch(conflict);
    return user;
  }

  /** Admins change anyone in their organisation; everyone may change their own details but not their role or status. */
  async update(callerId: string, organizationRef: string, userId: string, changes: UserChanges): Promise<UserRecord> {
    const self = callerId === userId;
    const needsAdmin = !self || changes.role !== undefined || changes.active !== undefined;
    const { organizationId } = await this.organizations.authorize(callerId, organizationRef, needsAdmin ? 'admin' : 'viewer');
    const membership = await this.memberOf(organizationId, userId);
    const role = changes.role !== undefined ? parseRole(changes.role) : undefined;
    if ((role && role !== 'admin') || changes.active === false) await this.keepAnAdmin(organizationId, membership.userId, membership.role);
    const data = {
      ...(changes.username !== undefined ? { username: validateUsername(changes.username) } : {}),
      ...(changes.email !== undefined ? { email: changes.email ? normalizeEmail(changes.email) : null } : {}),
      ...(changes.fullName !== undefined ? { fullName: validateFullName(changes.fullName) } : {}),
      ...(changes.active !== undefined ? { active: changes.active } : {}),
    };
    if (changes.password !== undefined) {
      this.passwords.validate(changes.password);
      Object.assign(data, { passwordHash: await this.passwords.hash(changes.password) });
    }
    const user = await this.db
      .$transaction(async (tx) => {
        if (role) await tx.membership.update({ where: { userId_organizationId: { userId, organizationId } }, data: { role } });
        return tx.user.update({ where: { id: userId }, data, include: userWithOrganizations });
      })
      .catch(conflict);
    this.userChanged(userId);
    if (changes.active === false || (changes.password !== undefined && !self)) await this.sessions.revokeAllOf(userId);
    return user;
  }

  /** Removes the user from the organisation; an account left in no organisation is deleted. */
  async remove(adminId: string, organizationRef: string, userId: string): Promise<void> {
    const { organizationId } = await this.organizations.authorize(adminId, organizationRef, 'admin');
    const membership = await this.memberOf(organizationId, userId);
    await this.keepAnAdmin(organizationId, userId, membership.role);
    await this.sessions.revokeAllOf(userId);
    await this.db.$transaction(async (tx) => {
      await tx.membership.delete({ where: { userId_organizationId: { userId, organizationId } } });
      const remaining = await tx.membership.findFirst({ where: { userId }, orderBy: { createdAt: 'asc' } });
      if (remaining) await tx.user.update({ where: { id: userId }, data: { defaultOrganizationId: remaining.organizationId } });
      else await tx.user.delete({ where: { id: userId } });
    });
    this.userChanged(userId);
  }

  private async memberOf(organizationId: string, userId: string) {
    const membership = await this.db.membership.findUnique({ where: { userId_organizationId: { userId, organizationId } } });
    if (!membership) throw BusError.notFound('user');
    return membership;
  }

  /** An organisation never loses its last admin. */
  private async keepAnAdmin(organizationId: string, userId: string, currentRole: Role | string): Promise<void> {
    if (currentRole !== 'admin') return;
    const admins = await this.db.membership.count({ where: { organizationId, role: 'admin', userId: { not: userId } } });
    if (admins === 0) throw new BusError('RESOURCE_CONFLICT', 'an organisation must keep at least one admin');
  }
}
