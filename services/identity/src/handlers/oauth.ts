import { implement, type Registration } from '@runnerhub/bus';
import type { ConfigOf } from '@runnerhub/config';
import { identityV1 } from '@runnerhub/contracts';
import type { Logger } from '@runnerhub/observability';
import type { IdentityDb } from '../adapters/database.js';
import { GithubHttp } from '../adapters/github.js';
import type { identityEnv } from '../config.js';
import type { Accounts } from '../domain/accounts.js';
import { GithubSignIn, OAuthStates, stateKey } from '../domain/github-oauth.js';
import { toUserMessage } from './mapping.js';

type Config = ConfigOf<typeof identityEnv>;

export interface GithubOAuthDependencies {
  config: Pick<Config, Extract<keyof Config, 'SECRETS_KEY' | `GITHUB_${string}`>>;
  db: IdentityDb;
  accounts: Accounts;
  logger: Pick<Logger, 'info' | 'warn'>;
}

/** Sign-in with GitHub on the bus; without a client ID and secret both methods answer SERVICE_UNAVAILABLE. */
export function githubOAuthHandlers({ config, db, accounts, logger }: GithubOAuthDependencies): Registration {
  const configured = config.GITHUB_CLIENT_ID && config.GITHUB_CLIENT_SECRET;
  const github = configured
    ? new GithubHttp({
        apiUrl: config.GITHUB_API_URL,
        webUrl: config.GITHUB_WEB_URL,
        clientId: config.GITHUB_CLIENT_ID!,
        clientSecret: config.GITHUB_CLIENT_SECRET!,
        timeoutMs: config.GITHUB_TIMEOUT_MS,
        resetMs: config.GITHUB_CIRCUIT_RESET_MS,
        onCircuit: (state) => (state === 'open' ? logger.warn({ resetMs: config.GITHUB_CIRCUIT_RESET_MS }, 'GitHub is failing: calls to it fail fast') : logger.info({ state }, 'GitHub circuit')),
      })
    : undefined;
  const signIn = new GithubSignIn(db, accounts, {
    github,
    clientId: config.GITHUB_CLIENT_ID ?? '',
    webUrl: config.GITHUB_WEB_URL,
    callbackUrl: config.GITHUB_OAUTH_CALLBACK_URL,
    states: new OAuthStates(stateKey(config.SECRETS_KEY, config.GITHUB_OAUTH_STATE_SECRET)),
  });

  return implement(identityV1.GithubOAuth, {
    async authorize(request) {
      return signIn.authorize(request.redirectUri);
    },
    async callback(request) {
      const result = await signIn.callback(request.code, request.state);
      return { accessToken: result.accessToken, refreshToken: result.refreshToken, expiresIn: result.expiresIn, user: toUserMessage(result.user) };
    },
  });
}
