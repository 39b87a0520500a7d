import { LookupCache } from './lookup-cache.js';

describe('LookupCache', () => {
  it('reuses a lookup until its TTL, and shares one call between concurrent callers', async () => {
    const cache = new LookupCache<number>({ ttlMs: 100 });
    let calls = 0;
    const lookup = async () => ++calls;
    expect(await Promise.all([cache.get('k', 'g', lookup), cache.get('k', 'g', lookup)])).toEqual([1, 1]);
    expect(await cache.get('k', 'g', lookup)).toBe(1);
    await new Promise((r) => setTimeout(r, 150));
    expect(await cache.get('k', 'g', lookup)).toBe(2);
  });

  it('drops every key of a group at once and no other', async () => {
    const cache = new LookupCache<string>({ ttlMs: 60_000 });
    let version = 1;
    const lookup = (key: string) => async () => `${key}@${version}`;
    await cache.get('a1', 'a', lookup('a1'));
    await cache.get('a2', 'a', lookup('a2'));
    await cache.get('b1', 'b', lookup('b1'));
    version = 2;
    cache.dropGroup('a');
    expect(await cache.get('a1', 'a', lookup('a1'))).toBe('a1@2');
    expect(await cache.get('a2', 'a', lookup('a2'))).toBe('a2@2');
    expect(await cache.get('b1', 'b', lookup('b1'))).toBe('b1@1');
  });

  it('keeps no failed lookup', async () => {
    const cache = new LookupCache<string>({ ttlMs: 60_000 });
    await expect(cache.get('k', 'g', async () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(await cache.get('k', 'g', async () => 'up')).toBe('up');
  });
});
