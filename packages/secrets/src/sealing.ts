import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type JsonWebKey, type KeyObject } from 'node:crypto';

/**
 * A secret sealed to a one-time X25519 key: the requester sends a fresh
 * public key; the holder of the secret answers with an ephemeral public key,
 * a nonce and AES-256-GCM ciphertext under HKDF-SHA256 of the shared secret,
 * bound to an `aad`. Only the requester's private key opens it, so the secret
 * is never in clear on the bus.
 */
export interface SealedSecret {
  ephemeralPublicKey: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

export interface X25519KeyPair {
  privateKey: KeyObject;
  /** The raw 32 bytes, as sent to the sealing side. */
  publicKey: Uint8Array;
}

/**
 * Node 20 deadlocks when a key from generateKeyPairSync() is exported from
 * its KeyObject (jwk, der or pem) while the garbage collector finalizes the
 * generator: the export holds the key's mutex while it allocates, the
 * finalizer waits for the same mutex, and the process stops for good (seen
 * as an inventory that no longer answered; gdb: ExportJWK → GC → ~KeyGenJob
 * → mutex wait). So the pair is generated already encoded, while its
 * generator is alive, and the private half is imported into a key of its own.
 */
export function x25519KeyPair(): X25519KeyPair {
  // Node returns JWK objects for JWK encodings; @types/node has no overload for them.
  const generated: unknown = generateKeyPairSync('x25519', { publicKeyEncoding: { format: 'jwk' }, privateKeyEncoding: { format: 'jwk' } } as never);
  const { privateKey } = generated as { privateKey: JsonWebKey };
  return { privateKey: createPrivateKey({ key: privateKey, format: 'jwk' }), publicKey: Buffer.from(privateKey.x as string, 'base64url') };
}

/** A raw 32-byte X25519 public key as a KeyObject; throws on anything else. */
export function x25519PublicKey(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new Error('an X25519 public key is 32 bytes');
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/** Seals `plaintext` to the holder of `recipient`'s private key. `info` names the protocol (HKDF info), `aad` what the secret is for. */
export function sealTo(recipient: Uint8Array, plaintext: Uint8Array, aad: string, info: string): SealedSecret {
  const recipientKey = x25519PublicKey(recipient);
  const ephemeral = x25519KeyPair();
  const key = sealingKey(diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipientKey }), ephemeral.publicKey, recipient, info);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { ephemeralPublicKey: ephemeral.publicKey, nonce, ciphertext };
}

/** Opens what sealTo sealed to `own`; throws when it was sealed to another key, for another `aad` or `info`, or changed. */
export function openSealed(own: X25519KeyPair, sealed: SealedSecret, aad: string, info: string): Buffer {
  const shared = diffieHellman({ privateKey: own.privateKey, publicKey: x25519PublicKey(sealed.ephemeralPublicKey) });
  const body = Buffer.from(sealed.ciphertext);
  if (body.length < 16) throw new Error('the sealed secret is truncated');
  const decipher = createDecipheriv('aes-256-gcm', sealingKey(shared, sealed.ephemeralPublicKey, own.publicKey, info), Buffer.from(sealed.nonce));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(body.subarray(body.length - 16));
  return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]);
}

function sealingKey(shared: Buffer, ephemeralPublicKey: Uint8Array, recipient: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeralPublicKey, recipient]), info, 32));
}
