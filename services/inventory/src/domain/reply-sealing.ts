import { createCipheriv, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { BusError } from '@runnerhub/bus';

/** HKDF info of the credential replies: must match the executor's opening side. */
export const SEALING_INFO = 'runnerhub.inventory.v1.credentials';

export interface SealedReply {
  ephemeralPublicKey: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

/** A raw 32-byte X25519 public key as a KeyObject; anything else is a validation error. */
export function x25519PublicKey(raw: Uint8Array, field: string): KeyObject {
  if (raw.length !== 32) throw BusError.validation(`${field} must be a raw 32-byte X25519 public key`, field);
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
  } catch {
    throw BusError.validation(`${field} must be a raw 32-byte X25519 public key`, field);
  }
}

export function rawPublicKey(key: KeyObject): Uint8Array {
  return Buffer.from(key.export({ format: 'jwk' }).x as string, 'base64url');
}

/**
 * Seals `plaintext` to the requester's X25519 key: a fresh ephemeral key
 * pair per reply, HKDF-SHA256 over the shared secret, AES-256-GCM bound to
 * `aad`. Only the holder of the requester's private key can open it.
 */
export function sealToPublicKey(recipientRaw: Uint8Array, plaintext: Uint8Array, aad: string): SealedReply {
  const recipient = x25519PublicKey(recipientRaw, 'reply_public_key');
  const ephemeral = generateKeyPairSync('x25519');
  const ephemeralPublicKey = rawPublicKey(ephemeral.publicKey);
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient });
  const key = Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeralPublicKey, recipientRaw]), SEALING_INFO, 32));
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { ephemeralPublicKey, nonce, ciphertext };
}
