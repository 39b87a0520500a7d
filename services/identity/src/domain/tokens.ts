import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createSigner } from 'fast-jwt';
import type { SecretBox } from '@runnerhub/secrets';
import type { IdentityDb } from '../adapters/database.js';

export const TOKEN_ALGORITHM = 'EdDSA';

export interface AccessClaims {
  sub: string;
  org: string;
  role: string;
  username: string;
  /** Refresh-token family: logout revokes the session it names. */
  sid: string;
}

export interface TokenSettings {
  issuer: string;
  audience: string;
  accessTtlSeconds: number;
  refreshTtlSeconds: number;
}

export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export function newRefreshToken(): string {
  return `rht_${randomBytes(32).toString('base64url')}`;
}

/**
 * Signs access tokens with an Ed25519 key only identity holds; the gateway
 * verifies with the public half it fetches over the bus, so it cannot mint tokens.
 * The private key is stored sealed; the first instance to start creates it.
 */
export class TokenIssuer {
  private constructor(
    readonly kid: string,
    private readonly sign: (claims: AccessClaims) => string,
    readonly settings: TokenSettings,
  ) {}

  static async load(db: IdentityDb, box: SecretBox, settings: TokenSettings): Promise<TokenIssuer> {
    let key = await db.signingKey.findFirst({ where: { retiredAt: null }, orderBy: { createdAt: 'desc' } });
    if (!key) {
      // Encoded by the generator: exporting a generated KeyObject can deadlock Node 20 (see x25519KeyPair in @runnerhub/secrets).
      const { publicKey, privateKey } = generateKeyPairSync('ed25519', { publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
      key = await db.signingKey.create({
        data: {
          kid: randomUUID(),
          algorithm: TOKEN_ALGORITHM,
          publicKeyPem: publicKey,
          privateKeySealed: box.seal(privateKey),
          sealingKeyId: box.currentKeyId,
        },
      });
    }
    const signer = createSigner({
      algorithm: TOKEN_ALGORITHM,
      key: box.open(key.privateKeySealed),
      kid: key.kid,
      iss: settings.issuer,
      aud: settings.audience,
      expiresIn: settings.accessTtlSeconds * 1000,
    });
    return new TokenIssuer(key.kid, (claims) => signer({ ...claims }), settings);
  }

  issueAccessToken(claims: AccessClaims): string {
    return this.sign(claims);
  }
}

export async function verificationKeys(db: IdentityDb): Promise<Array<{ kid: string; algorithm: string; publicKeyPem: string }>> {
  return db.signingKey.findMany({ where: { retiredAt: null }, select: { kid: true, algorithm: true, publicKeyPem: true } });
}
