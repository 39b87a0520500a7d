import type { FastifyInstance } from 'fastify';
import { BusError, createClient, type Bus } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';

const param = { type: 'string', maxLength: 2048 } as const;

/**
 * Identity makes up to three GitHub calls for one callback, each with its own
 * timeout (GITHUB_TIMEOUT_MS, 10 s by default): the usual bus timeout would give up first.
 */
const CALLBACK_TIMEOUT_MS = 35_000;

/** RustCI's sign-in with GitHub (DESIGN.md §1: no bearer token needed). */
export async function githubOAuthRoutes(app: FastifyInstance, options: { bus: Bus }): Promise<void> {
  const oauth = createClient(options.bus, identityV1.GithubOAuth);

  app.get('/v1/auth/github', { config: { dialect: 'rustci' } }, async (_request, reply) => {
    const { url } = await oauth.authorize({});
    return reply.redirect(url, 302);
  });

  app.get<{ Querystring: { code?: string; state?: string; error?: string; error_description?: string } }>('/v1/auth/github/callback', {
    config: { dialect: 'rustci', rateLimit: 'login' },
    schema: {
      querystring: { type: 'object', properties: { code: param, state: param, error: param, error_description: param } },
    },
  }, async (request) => {
    const { code, state, error, error_description: description } = request.query;
    // GitHub sends the user back with an error instead of a code when they decline.
    if (error) throw new BusError('AUTH_INVALID', `GitHub sign-in was not completed: ${description || error}`);
    if (!state) throw BusError.validation('state is required', 'state');
    if (!code) throw BusError.validation('code is required', 'code');
    const result = await oauth.callback({ code, state, clientAddress: request.ip }, { timeoutMs: CALLBACK_TIMEOUT_MS });
    const user = result.user!;
    return {
      token: result.accessToken,
      access_token: result.accessToken,
      token_type: 'Bearer',
      expires_in: result.expiresIn,
      refresh_token: result.refreshToken,
      user: { id: user.uid, username: user.username, email: user.email || null, github_id: user.githubId || null },
    };
  });
}
