import { createPrivateKey } from 'node:crypto';
import ssh2 from 'ssh2';
import { BusError } from '@runnerhub/bus';
import { maskSecret, type SecretBox } from '@runnerhub/secrets';

export const AUTH_TYPES = ['password', 'key'] as const;
export type AuthType = (typeof AUTH_TYPES)[number];

export interface CredentialInput {
  authType: string;
  password: string;
  privateKey: string;
}

export interface SealedCredential {
  authType: AuthType;
  sealed: string;
  masked: string;
}

const MAX_SECRET = 16_384;

/** PEM (PKCS#1, PKCS#8, SEC1) through node:crypto; OpenSSH's own format through ssh2. Encrypted keys are refused: nothing could unlock them. */
export function validatePrivateKey(key: string): string {
  const text = key.trim();
  const invalid = BusError.validation('private_key must be an unencrypted private key (PEM or OpenSSH format)', 'private_key');
  if (!text || text.length > MAX_SECRET) throw invalid;
  try {
    createPrivateKey(text);
    return text;
  } catch {
    const parsed = ssh2.utils.parseKey(text);
    if (parsed instanceof Error || !parsed.isPrivateKey()) throw invalid;
    return text;
  }
}

/** Seals SSH passwords and private keys with AES-256-GCM; only a masked form is ever shown. */
export class Credentials {
  constructor(private readonly box: SecretBox) {}

  /**
   * The credential a request carries, sealed; null when it carries none.
   * Without an explicit auth type, the secret given decides it.
   */
  seal(input: CredentialInput): SealedCredential | null {
    const authType = input.authType || (input.privateKey ? 'key' : input.password ? 'password' : '');
    if (!authType) return null;
    if (authType === 'password') {
      if (!input.password || input.password.length > MAX_SECRET) throw BusError.validation('password is required when auth_type is password', 'password');
      if (input.privateKey) throw BusError.validation('private_key is only accepted when auth_type is key', 'private_key');
      return { authType, sealed: this.box.seal(input.password), masked: maskSecret(input.password) };
    }
    if (authType === 'key') {
      if (!input.privateKey) throw BusError.validation('private_key is required when auth_type is key', 'private_key');
      if (input.password) throw BusError.validation('password is only accepted when auth_type is password', 'password');
      const key = validatePrivateKey(input.privateKey);
      // The key's base64 body, not its "-----END ... KEY-----" trailer, gives the last four characters.
      return { authType, sealed: this.box.seal(key), masked: maskSecret(key.replace(/-----[^-]+-----|\s/g, '')) };
    }
    throw BusError.validation(`auth_type must be one of ${AUTH_TYPES.join(', ')}`, 'auth_type');
  }

  /** The secret a sealed credential holds; only for ResolveCredentials, never for users. */
  open(sealed: string): string {
    return this.box.open(sealed);
  }
}
