import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { env } from '@runnerhub/config';

/** The variables of every service that seals secrets. */
export const secretsEnv = {
  SECRETS_KEY: env.string(
    'Base64 of 32 bytes sealing secrets at rest (token signing keys, SSH passwords and keys); the default is for development only',
    'ZGV2ZWxvcG1lbnQtb25seS1zZWNyZXRzLWtleS0zMiE=',
  ),
  SECRETS_KEY_ID: env.string('Name of SECRETS_KEY, stored beside each sealed secret so keys can rotate', 'dev'),
};

/**
 * Seals secrets at rest with AES-256-GCM. The sealed form names the key that
 * sealed it ("v1:<keyId>:<iv>:<tag>:<ciphertext>", base64url parts), so keys
 * can rotate: new secrets use the current key, old ones still open.
 */
export class SecretBox {
  private readonly keys: Map<string, Buffer>;

  static fromConfig(config: { SECRETS_KEY: string; SECRETS_KEY_ID: string }): SecretBox {
    return new SecretBox(config.SECRETS_KEY_ID, { [config.SECRETS_KEY_ID]: config.SECRETS_KEY });
  }

  constructor(
    readonly currentKeyId: string,
    keys: Record<string, string>,
  ) {
    this.keys = new Map(Object.entries(keys).map(([id, base64]) => [id, decodeKey(id, base64)]));
    if (!this.keys.has(currentKeyId)) throw new Error(`secrets key "${currentKeyId}" is not configured`);
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key(this.currentKeyId), iv);
    cipher.setAAD(Buffer.from(this.currentKeyId));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', this.currentKeyId, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join(':');
  }

  open(sealed: string): string {
    const [version, keyId, iv, tag, ciphertext] = sealed.split(':');
    if (version !== 'v1' || !keyId || !iv || !tag || ciphertext === undefined) throw new Error('not a sealed secret');
    const decipher = createDecipheriv('aes-256-gcm', this.key(keyId), Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(keyId));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  }

  keyIdOf(sealed: string): string | undefined {
    return sealed.split(':')[1];
  }

  private key(id: string): Buffer {
    const key = this.keys.get(id);
    if (!key) throw new Error(`secrets key "${id}" is not configured`);
    return key;
  }
}

function decodeKey(id: string, base64: string): Buffer {
  const key = Buffer.from(base64, 'base64');
  if (key.length !== 32) throw new Error(`secrets key "${id}" must be 32 bytes, base64-encoded (got ${key.length} bytes)`);
  return key;
}

/** The masked form responses show instead of a secret: ghr_1234567890abcdef → ghr_****cdef. */
export function maskSecret(secret: string): string {
  if (secret.length <= 8) return '****';
  const prefix = /^[a-z]{2,4}_/i.exec(secret)?.[0] ?? '';
  return `${prefix}****${secret.slice(-4)}`;
}
export * from './sealing.js';
