import type { UserRecord } from './accounts.js';

/**
 * Recently read users with their organisations. Every authenticated request
 * asks identity who the caller is; answering from memory keeps that off the
 * database. Entries are dropped on every change (on all instances, through
 * the user-changed event) and expire after the TTL as a safety net.
 */
export class ProfileCache {
  private readonly entries = new Map<string, { user: UserRecord; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get(userId: string): UserRecord | undefined {
    const entry = this.entries.get(userId);
    if (!entry) return undefined;
    if (entry.expiresAt < Date.now()) {
      this.entries.delete(userId);
      return undefined;
    }
    return entry.user;
  }

  set(userId: string, user: UserRecord): void {
    if (this.entries.size >= this.maxEntries) {
      // Maps iterate in insertion order: drop the oldest entry.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(userId, { user, expiresAt: Date.now() + this.ttlMs });
  }

  invalidate(userId: string): void {
    this.entries.delete(userId);
  }
}
