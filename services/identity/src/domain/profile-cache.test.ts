import { ProfileCache } from './profile-cache.js';
import type { UserRecord } from './accounts.js';

const user = (id: string) => ({ id }) as UserRecord;

test('a cached user is returned until it is invalidated', () => {
  const cache = new ProfileCache(60_000);
  cache.set('u1', user('u1'));
  expect(cache.get('u1')?.id).toBe('u1');
  cache.invalidate('u1');
  expect(cache.get('u1')).toBeUndefined();
});

test('an entry expires after the TTL', () => {
  const cache = new ProfileCache(-1);
  cache.set('u1', user('u1'));
  expect(cache.get('u1')).toBeUndefined();
});

test('the oldest entry makes room when the cache is full', () => {
  const cache = new ProfileCache(60_000, 2);
  cache.set('a', user('a'));
  cache.set('b', user('b'));
  cache.set('c', user('c'));
  expect(cache.get('a')).toBeUndefined();
  expect(cache.get('b')?.id).toBe('b');
  expect(cache.get('c')?.id).toBe('c');
});
