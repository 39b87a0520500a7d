import { randomBytes } from 'node:crypto';
import { BusError } from '@runnerhub/bus';
import type { IdentityDb } from '../adapters/database.js';
import { Prisma } from '../generated/prisma/client.js';
import type { PasswordHasher } from './passwords.js';
import type { ProfileCache } from './profile-cache.js';
import type { IssuedSession, Sessions } from './sessions.js';
import { normalizeEmail, validateFullName, validateUsername } from './validation.js';

export const userWithOrganizations = { memberships: { include: { organization: true }, orderBy: { createdAt: 'asc' } } } as const;

export type UserRecord = Prisma.UserGetPayload<{ include: typeof userWithOrganizations }>;

export interface RegisterInput {
  username?: string;
  email: string;
  fullName: string;
  password: string;
}

export interface NewUser {
  username: string;
  email: string | null;
  fullName: string;
  passwordHash: string | null;
  githubId?: bigint;
}

export interface LoginResult extends IssuedSession {
  user: UserRecord;
}

/** Accounts: registration with a personal organisation, login, the current user. */
export class Accounts {
  constructor(
    private readonly db: IdentityDb,
    private readonly passwords: PasswordHasher,
    private readonly sessions: Sessions,
    private readonly profiles: ProfileCache,
    /** Told after any change to a user, so every instance drops its cached copy. */
    private readonly userChanged: (userId: string) => void,
  ) {}

  async register(input: RegisterInput): Promise<UserRecord> {
    const email = normalizeEmail(input.email);
    const username = validateUsername(input.username || email);
    const fullName = validateFullName(input.fullName);
    this.passwords.validate(input.password);
    const passwordHash = await this.passwords.hash(input.password);
    try {
      return await this.createWithPersonalOrganization({ username, email, fullName, passwordHash });
    } catch (error) {
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
        // The username defaults to the email, so ask which one is really taken.
        const field = (await this.db.user.count({ where: { email } })) > 0 ? 'email' : 'username';
        throw new BusError('RESOURCE_CONFLICT', `${field} is already registered`, '', field);
      }
      throw error;
    }
  }

  async login(identifier: string, password: string): Promise<LoginResult> {
    const value = identifier.trim();
    const user = value
      ? await this.db.user.findFirst({
          where: { OR: [{ username: value }, { email: value.toLowerCase() }] },
          include: userWithOrganizations,
        })
      : null;
    const valid = await this.passwords.verify(user?.passwordHash, password);
    if (!user || !valid || !user.active) throw new BusError('AUTH_INVALID', 'invalid username or password');
    return this.signIn(user);
  }

  /**
   * A new user with a personal organisation they administer (registration,
   * first GitHub sign-in). One transaction: never a user without an
   * organisation, or the reverse. A taken username, email or github_id is P2002.
   */
  async createWithPersonalOrganization(data: NewUser): Promise<UserRecord> {
    return this.db.$transaction(async (tx) => {
      const organization = await tx.organization.create({
        data: { name: data.fullName || data.username, shortName: personalShortName(data.username), type: 'personal' },
      });
      const user = await tx.user.create({ data: { ...data, defaultOrganizationId: organization.id } });
      await tx.membership.create({ data: { userId: user.id, organizationId: organization.id, role: 'admin' } });
      return tx.user.findUniqueOrThrow({ where: { id: user.id }, include: userWithOrganizations });
    });
  }

  /** Starts a session for a user who has just proved who they are (password, GitHub). */
  async signIn(user: UserRecord): Promise<LoginResult> {
    const session = await this.sessions.start(user);
    const lastLoginAt = new Date();
    await this.db.user.update({ where: { id: user.id }, data: { lastLoginAt } });
    this.userChanged(user.id);
    return { ...session, user: { ...user, lastLoginAt } };
  }

  async me(userId: string): Promise<UserRecord> {
    let user = this.profiles.get(userId);
    if (!user) {
      const found = await this.db.user.findUnique({ where: { id: userId }, include: userWithOrganizations });
      if (!found || !found.active) throw new BusError('AUTH_INVALID', 'the account of this token no longer exists');
      this.profiles.set(userId, found);
      user = found;
    }
    return user;
  }

  /** Creates the configured admin once, in the shared "default" organisation. */
  async ensureInitialAdmin(admin: { username: string; password: string; email?: string }): Promise<boolean> {
    if (await this.db.user.findUnique({ where: { username: admin.username } })) return false;
    this.passwords.validate(admin.password);
    const passwordHash = await this.passwords.hash(admin.password);
    const created = this.db.$transaction(async (tx) => {
      const organization = await tx.organization.upsert({
        where: { shortName: 'default' },
        create: { name: 'Default', shortName: 'default', type: 'organization' },
        update: {},
      });
      const user = await tx.user.create({
        data: { username: admin.username, email: admin.email ? normalizeEmail(admin.email) : null, fullName: 'Administrator', passwordHash, defaultOrganizationId: organization.id },
      });
      await tx.membership.create({ data: { userId: user.id, organizationId: organization.id, role: 'admin' } });
    });
    // Another identity instance starting at the same moment may win the race.
    return created.then(() => true, (error: unknown) => {
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') return false;
      throw error;
    });
  }
}

export function defaultMembership(user: UserRecord): UserRecord['memberships'][number] | undefined {
  return user.memberships.find((m) => m.organizationId === user.defaultOrganizationId) ?? user.memberships[0];
}

function personalShortName(username: string): string {
  const base = username.split('@')[0]!.replace(/[^a-zA-Z0-9]/g, '').slice(0, 16) || 'user';
  return `${base}-${randomBytes(3).toString('hex')}`;
}
