import { LRUCache } from 'lru-cache';

/**
 * Lookups reused for a while, each filed under a group (a user, a server)
 * that an event can drop at once: the TTL then only bounds how long a lost
 * event leaves a stale answer in use. Concurrent lookups of one key share one
 * call; a failed lookup is not kept.
 */
export class LookupCache<V> {
  private readonly entries: LRUCache<string, { group: string; value: Promise<V> }>;
  private readonly keysOfGroup = new Map<string, Set<string>>();

  constructor(options: { ttlMs: number; max?: number }) {
    this.entries = new LRUCache({
      max: options.max ?? 10_000,
      ttl: options.ttlMs,
      // Expired, evicted or dropped: the group index follows.
      dispose: ({ group }, key) => {
        const keys = this.keysOfGroup.get(group);
        keys?.delete(key);
        if (keys?.size === 0) this.keysOfGroup.delete(group);
      },
    });
  }

  get(key: string, group: string, lookup: () => Promise<V>): Promise<V> {
    const cached = this.entries.get(key);
    if (cached) return cached.value;
    const value = lookup();
    this.entries.set(key, { group, value });
    let keys = this.keysOfGroup.get(group);
    if (!keys) this.keysOfGroup.set(group, (keys = new Set()));
    keys.add(key);
    value.catch(() => {
      if (this.entries.peek(key)?.value === value) this.entries.delete(key);
    });
    return value;
  }

  /** Forgets every lookup of the group. */
  dropGroup(group: string): void {
    for (const key of [...(this.keysOfGroup.get(group) ?? [])]) this.entries.delete(key);
  }
}
