import { randomUUID } from 'node:crypto';
import { BusError } from '@runnerhub/bus';
import type { IdentityDb } from '../adapters/database.js';
import { defaultMembership, type UserRecord } from './accounts.js';
import { hashRefreshToken, newRefreshToken, type TokenIssuer } from './tokens.js';

export interface IssuedSession {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  sessionId: string;
}

export interface SessionEvents {
  /** A session's tokens must be refused from now on, on every gateway. */
  revoked(sessionId: string, until: Date): void;
}

/**
 * Sessions are refresh-token families. Each refresh spends one token and
 * issues the next of the same family; presenting a spent token again means it
 * leaked, so the whole family is revoked.
 */
export class Sessions {
  constructor(
    private readonly db: IdentityDb,
    private readonly tokens: TokenIssuer,
    private readonly events: SessionEvents,
  ) {}

  /** Starts a new session for a user who just proved who they are. */
  async start(user: UserRecord): Promise<IssuedSession> {
    return this.issue(user, randomUUID());
  }

  async refresh(presented: string, loadUser: (userId: string) => Promise<UserRecord>): Promise<IssuedSession & { user: UserRecord }> {
    const stored = presented ? await this.db.refreshToken.findUnique({ where: { tokenHash: hashRefreshToken(presented) } }) : null;
    if (!stored || stored.expiresAt < new Date()) throw new BusError('AUTH_INVALID', 'the refresh token is invalid or has expired');
    if (stored.revokedAt) throw new BusError('AUTH_INVALID', 'the session of this refresh token has been revoked');
    // Spend it atomically: of two concurrent uses only one wins; the other is a reuse.
    const spent = await this.db.refreshToken.updateMany({ where: { id: stored.id, usedAt: null }, data: { usedAt: new Date() } });
    if (spent.count === 0) {
      await this.revokeFamily(stored.familyId);
      throw new BusError('AUTH_INVALID', 'this refresh token was already used: the session has been revoked');
    }
    const user = await loadUser(stored.userId);
    return { ...(await this.issue(user, stored.familyId)), user };
  }

  async logout(sessionId: string): Promise<void> {
    if (!sessionId) throw new BusError('AUTH_INVALID', 'the access token names no session');
    await this.revokeFamily(sessionId);
  }

  /** Every session of a user: after deletion, deactivation or a password change. */
  async revokeAllOf(userId: string): Promise<void> {
    const families = await this.db.refreshToken.findMany({ where: { userId, revokedAt: null }, distinct: ['familyId'], select: { familyId: true } });
    for (const { familyId } of families) await this.revokeFamily(familyId);
  }

  /** Sessions revoked recently enough that their access tokens may still be unexpired. */
  async recentlyRevoked(): Promise<string[]> {
    const since = new Date(Date.now() - this.tokens.settings.accessTtlSeconds * 1000);
    const rows = await this.db.refreshToken.findMany({ where: { revokedAt: { gte: since } }, distinct: ['familyId'], select: { familyId: true } });
    return rows.map((r) => r.familyId);
  }

  private async revokeFamily(familyId: string): Promise<void> {
    const now = new Date();
    await this.db.refreshToken.updateMany({ where: { familyId, revokedAt: null }, data: { revokedAt: now } });
    this.events.revoked(familyId, new Date(now.getTime() + this.tokens.settings.accessTtlSeconds * 1000));
  }

  private async issue(user: UserRecord, familyId: string): Promise<IssuedSession> {
    if (!user.active) throw new BusError('AUTH_INVALID', 'this account is deactivated');
    const membership = defaultMembership(user);
    const refreshToken = newRefreshToken();
    const { accessTtlSeconds, refreshTtlSeconds } = this.tokens.settings;
    await this.db.refreshToken.create({
      data: { userId: user.id, familyId, tokenHash: hashRefreshToken(refreshToken), expiresAt: new Date(Date.now() + refreshTtlSeconds * 1000) },
    });
    const accessToken = this.tokens.issueAccessToken({
      sub: user.id,
      org: membership?.organizationId ?? '',
      role: membership?.role ?? 'viewer',
      username: user.username,
      sid: familyId,
    });
    return { accessToken, refreshToken, expiresIn: accessTtlSeconds, sessionId: familyId };
  }
}
