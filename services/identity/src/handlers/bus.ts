import { BusError, implement, type Registration } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import type { Accounts } from '../domain/accounts.js';
import type { IdentityDb } from '../adapters/database.js';
import { verificationKeys, type TokenSettings } from '../domain/tokens.js';
import { toUserMessage } from './mapping.js';

const pending = async (): Promise<never> => {
  throw new BusError('SERVICE_UNAVAILABLE', 'not implemented yet');
};

/** Thin bus adapters: decode, call the domain, map the result. */
export function identityHandlers(accounts: Accounts, db: IdentityDb, tokenSettings: TokenSettings): Registration[] {
  return [
    implement(identityV1.Auth, {
      async register(request) {
        const user = await accounts.register({ username: request.username, email: request.email, fullName: request.fullName, password: request.password });
        return { user: toUserMessage(user) };
      },
      async login(request) {
        const result = await accounts.login(request.identifier, request.password);
        return { accessToken: result.accessToken, refreshToken: result.refreshToken, expiresIn: result.expiresIn, user: toUserMessage(result.user) };
      },
      refresh: pending,
      logout: pending,
      listRevokedSessions: pending,
    }),
    implement(identityV1.Users, {
      async getMe(request) {
        if (!request.caller?.userUid) throw new BusError('AUTH_REQUIRED', 'authentication required');
        return { user: toUserMessage(await accounts.me(request.caller.userUid)) };
      },
      updateMe: pending,
      list: pending,
      create: pending,
      update: pending,
      delete: pending,
    }),
    implement(identityV1.Keys, {
      async getVerificationKeys() {
        return { keys: await verificationKeys(db), issuer: tokenSettings.issuer, audience: tokenSettings.audience };
      },
    }),
  ];
}
