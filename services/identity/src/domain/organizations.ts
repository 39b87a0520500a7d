import { BusError } from '@runnerhub/bus';
import type { IdentityDb } from '../adapters/database.js';
import { Prisma } from '../generated/prisma/client.js';
import type { Accounts } from './accounts.js';
import { membershipIn, requireRole, type MembershipRecord, type Role } from './authorization.js';

const SHORT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;
const TYPES = ['personal', 'organization'] as const;
type OrganizationType = (typeof TYPES)[number];

export interface OrganizationInput {
  name: string;
  shortName: string;
  type?: string;
}

function validateName(name: string): string {
  const value = name.trim();
  if (!value || value.length > 200) throw BusError.validation('name must be 1-200 characters', 'name');
  return value;
}

function validateShortName(shortName: string): string {
  const value = shortName.trim();
  if (!SHORT_NAME.test(value)) throw BusError.validation('short_name must be 1-32 letters, digits, _ or -, starting with a letter or digit', 'short_name');
  return value;
}

function validateType(type: string | undefined): OrganizationType {
  const value = type || 'organization';
  if (!(TYPES as readonly string[]).includes(value)) throw BusError.validation(`type must be one of ${TYPES.join(', ')}`, 'type');
  return value as OrganizationType;
}

function conflictOnShortName(error: unknown): never {
  if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
    throw new BusError('RESOURCE_CONFLICT', 'short_name is already taken', '', 'short_name');
  }
  throw error;
}

/** Organisations as their members see them: every lookup goes through the caller's memberships. */
export class Organizations {
  constructor(
    private readonly db: IdentityDb,
    private readonly accounts: Accounts,
    private readonly userChanged: (userId: string) => void,
  ) {}

  /** The caller's membership with at least the required role; a foreign organisation is not found. */
  async authorize(userId: string, organizationRef: string, required: Role = 'viewer'): Promise<MembershipRecord> {
    return requireRole(membershipIn(await this.accounts.me(userId), organizationRef), required);
  }

  async list(userId: string): Promise<MembershipRecord[]> {
    return (await this.accounts.me(userId)).memberships;
  }

  /** Creates an organisation with the caller as its admin; onboarding also makes it their default. */
  async create(userId: string, input: OrganizationInput, options: { makeDefault?: boolean } = {}): Promise<MembershipRecord> {
    const data = { name: validateName(input.name), shortName: validateShortName(input.shortName), type: validateType(input.type) };
    const organization = await this.db
      .$transaction(async (tx) => {
        const created = await tx.organization.create({ data });
        await tx.membership.create({ data: { userId, organizationId: created.id, role: 'admin' } });
        if (options.makeDefault) await tx.user.update({ where: { id: userId }, data: { defaultOrganizationId: created.id } });
        return created;
      })
      .catch(conflictOnShortName);
    this.userChanged(userId);
    return this.authorize(userId, organization.id);
  }

  async update(userId: string, organizationRef: string, input: Partial<OrganizationInput>): Promise<MembershipRecord> {
    const { organization } = await this.authorize(userId, organizationRef, 'admin');
    const data = {
      ...(input.name !== undefined ? { name: validateName(input.name) } : {}),
      ...(input.shortName !== undefined ? { shortName: validateShortName(input.shortName) } : {}),
      ...(input.type !== undefined ? { type: validateType(input.type) } : {}),
    };
    await this.db.organization.update({ where: { id: organization.id }, data }).catch(conflictOnShortName);
    // Every member's cached profile shows the organisation.
    const members = await this.db.membership.findMany({ where: { organizationId: organization.id }, select: { userId: true } });
    for (const member of members) this.userChanged(member.userId);
    return this.authorize(userId, organization.id);
  }
}
