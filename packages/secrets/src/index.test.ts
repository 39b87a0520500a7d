import { randomBytes } from 'node:crypto';
import { maskSecret, SecretBox } from './index.js';

const keyA = randomBytes(32).toString('base64');
const keyB = randomBytes(32).toString('base64');

test('a sealed secret opens to the original and does not contain it', () => {
  const box = new SecretBox('a', { a: keyA });
  const sealed = box.seal('hunter2-very-secret');
  expect(sealed).not.toContain('hunter2');
  expect(box.open(sealed)).toBe('hunter2-very-secret');
  expect(box.seal('x')).not.toBe(box.seal('x'));
});

test('after a key rotation old secrets still open and new ones use the new key', () => {
  const old = new SecretBox('a', { a: keyA }).seal('old secret');
  const rotated = new SecretBox('b', { a: keyA, b: keyB });
  expect(rotated.open(old)).toBe('old secret');
  expect(rotated.keyIdOf(rotated.seal('new'))).toBe('b');
});

test('a tampered secret or a wrong key is refused', () => {
  const box = new SecretBox('a', { a: keyA });
  const sealed = box.seal('payload');
  const parts = sealed.split(':');
  parts[4] = Buffer.from('other').toString('base64url');
  expect(() => box.open(parts.join(':'))).toThrow();
  expect(() => new SecretBox('a', { a: keyB }).open(sealed)).toThrow();
  expect(() => new SecretBox('a', { a: 'c2hvcnQ=' })).toThrow(/32 bytes/);
});

test('masking keeps the token prefix and the last four characters only', () => {
  expect(maskSecret('ghr_1234567890abcdef')).toBe('ghr_****cdef');
  expect(maskSecret('short')).toBe('****');
});
