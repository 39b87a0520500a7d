import { implement, type Registration } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import type { Accounts } from '../domain/accounts.js';
import type { Sessions } from '../domain/sessions.js';
import { verificationKeys, type TokenSettings } from '../domain/tokens.js';
import type { IdentityDb } from '../adapters/database.js';
import { requireCaller } from './caller.js';
import { toUserMessage } from './mapping.js';

export function authHandlers(accounts: Accounts, sessions: Sessions, db: IdentityDb, tokenSettings: TokenSettings): Registration[] {
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
      async refresh(request) {
        const result = await sessions.refresh(request.refreshToken, (userId) => accounts.me(userId));
        return { accessToken: result.accessToken, refreshToken: result.refreshToken, expiresIn: result.expiresIn, user: toUserMessage(result.user) };
      },
      async logout(request) {
        await sessions.logout(requireCaller(request.caller).sessionId);
        return {};
      },
      async listRevokedSessions() {
        return { sessionIds: await sessions.recentlyRevoked() };
      },
    }),
    implement(identityV1.Keys, {
      async getVerificationKeys() {
        return { keys: await verificationKeys(db), issuer: tokenSettings.issuer, audience: tokenSettings.audience };
      },
    }),
  ];
}
