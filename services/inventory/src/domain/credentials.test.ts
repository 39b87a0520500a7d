import { generateKeyPairSync, randomBytes } from 'node:crypto';
import ssh2 from 'ssh2';
import { SecretBox } from '@runnerhub/secrets';
import { Credentials, validatePrivateKey } from './credentials.js';

const box = new SecretBox('test', { test: randomBytes(32).toString('base64') });
const credentials = new Credentials(box);

test('a password is sealed, opens to the original and is shown masked', () => {
  const sealed = credentials.seal({ authType: 'password', password: 'correct-horse-battery', privateKey: '' });
  expect(sealed).toMatchObject({ authType: 'password', masked: '****tery' });
  expect(sealed!.sealed).not.toContain('correct-horse');
  expect(box.open(sealed!.sealed)).toBe('correct-horse-battery');
});

test('PEM and OpenSSH private keys are accepted; public keys, encrypted keys and garbage are not', () => {
  const pem = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const openssh = ssh2.utils.generateKeyPairSync('ed25519');
  const encrypted = ssh2.utils.generateKeyPairSync('ed25519', { passphrase: 'secret', cipher: 'aes256-ctr' });
  expect(() => validatePrivateKey(pem.privateKey)).not.toThrow();
  expect(() => validatePrivateKey(openssh.private)).not.toThrow();
  for (const bad of [pem.publicKey, openssh.public, encrypted.private, 'hello', '']) {
    expect(() => validatePrivateKey(bad)).toThrow(/private_key must be/);
  }
});

test('the secret given decides the auth type; a missing or mismatched secret is refused', () => {
  expect(credentials.seal({ authType: '', password: '', privateKey: '' })).toBeNull();
  expect(credentials.seal({ authType: '', password: 'a-password', privateKey: '' })?.authType).toBe('password');
  expect(() => credentials.seal({ authType: 'key', password: '', privateKey: '' })).toThrow(/private_key is required/);
  expect(() => credentials.seal({ authType: 'password', password: '', privateKey: '' })).toThrow(/password is required/);
  expect(() => credentials.seal({ authType: 'key', password: 'a-password', privateKey: '' })).toThrow(/private_key is required/);
  expect(() => credentials.seal({ authType: 'token', password: 'a-password', privateKey: '' })).toThrow(/auth_type must be/);
});
