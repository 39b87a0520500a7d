import fastifyJwt from '@fastify/jwt';
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { BusError } from '@runnerhub/bus';
import type { VerificationKeys } from './keys.js';
import type { RevokedSessions } from './revocations.js';

export interface Caller {
  userUid: string;
  organizationUid: string;
  role: string;
  username: string;
  sessionId: string;
  clientAddress: string;
}

interface AccessTokenPayload {
  sub: string;
  org: string;
  role: string;
  username: string;
  sid: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
  interface FastifyInstance {
    authenticate(request: FastifyRequest): Promise<void>;
  }
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessTokenPayload;
    user: AccessTokenPayload;
  }
}

const JWT_ERRORS: Record<string, BusError> = {
  FST_JWT_NO_AUTHORIZATION_IN_HEADER: new BusError('AUTH_REQUIRED', 'authentication required: send Authorization: Bearer <token>'),
  FST_JWT_AUTHORIZATION_TOKEN_EXPIRED: new BusError('AUTH_EXPIRED', 'the access token has expired'),
};

/** Verifies bearer tokens with identity's public keys; only verification, never signing. */
export const authPlugin = fp(async (app, options: { keys: VerificationKeys; revoked: RevokedSessions; issuer: string; audience: string }) => {
  const { keys, revoked } = options;
  await keys.fetch().catch(() => undefined);
  await app.register(fastifyJwt, {
    secret: (async (_request: FastifyRequest, token: { header: { kid?: string } }) => keys.publicKey(token.header.kid)) as never,
    decode: { complete: true },
    // Fixed options let @fastify/jwt keep one verifier per key, and fast-jwt's
    // cache skips the signature check for a token it has already verified.
    verify: { algorithms: ['EdDSA'], allowedIss: options.issuer, allowedAud: options.audience, cache: 10_000 },
  });

  app.decorate('authenticate', async (request: FastifyRequest) => {
    let payload: AccessTokenPayload;
    try {
      payload = await request.jwtVerify<AccessTokenPayload>();
    } catch (error) {
      if (error instanceof BusError) throw error;
      const code = (error as { code?: string }).code ?? '';
      throw JWT_ERRORS[code] ?? new BusError('AUTH_INVALID', 'the access token is invalid');
    }
    if (revoked.isRevoked(payload.sid)) throw new BusError('AUTH_INVALID', 'this session has been logged out or revoked');
    request.caller = {
      userUid: payload.sub,
      organizationUid: payload.org,
      role: payload.role,
      username: payload.username,
      sessionId: payload.sid,
      clientAddress: request.ip,
    };
  });
});
