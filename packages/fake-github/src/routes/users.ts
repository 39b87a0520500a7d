import { basicError, type Route } from '../http.js';
import type { GithubDescription } from '../openapi.js';
import type { Account, FakeGithubState } from '../state.js';

export interface Urls {
  apiUrl: string;
  webUrl: string;
}

/** `GET /user` and `GET /user/emails`, shaped from GitHub's documented examples. */
export function userRoutes(state: FakeGithubState, description: GithubDescription, urls: Urls): Route[] {
  return [
    {
      surface: 'api',
      method: 'GET',
      path: '/user',
      handle(request) {
        const caller = state.bearer(request.headers.authorization);
        if (!caller) return basicError(401, 'Bad credentials');
        return { status: 200, headers: { 'x-oauth-scopes': caller.scopes.join(', ') }, body: privateUser(description, caller.account, urls) };
      },
    },
    {
      surface: 'api',
      method: 'GET',
      path: '/user/emails',
      handle(request) {
        const caller = state.bearer(request.headers.authorization);
        if (!caller) return basicError(401, 'Bad credentials');
        // Without an email scope GitHub hides the endpoint.
        if (!caller.scopes.some((s) => s === 'user' || s === 'user:email')) return basicError(404, 'Not Found');
        return { status: 200, headers: { 'x-oauth-scopes': caller.scopes.join(', ') }, body: emails(description, caller.account) };
      },
    },
  ];
}

export function privateUser(description: GithubDescription, account: Account, urls: Urls): unknown {
  const example = description.example('GET', '/user');
  const user = {
    ...rebase(example, urls, account.login),
    login: account.login,
    id: account.id,
    node_id: Buffer.from(`04:User${account.id}`).toString('base64'),
    name: account.name,
    email: account.email,
  };
  description.check('GET', '/user', '200', user);
  return user;
}

export function emails(description: GithubDescription, account: Account): unknown {
  const list = account.emails.map((e) => ({ email: e.email, primary: e.primary, verified: e.verified, visibility: e.visibility ?? null }));
  description.check('GET', '/user/emails', '200', list);
  return list;
}

/** Points the example's links at the fake and its user, so no answer leads a client to the real GitHub. */
function rebase(example: Record<string, unknown>, urls: Urls, login: string): Record<string, unknown> {
  const rewrite = (value: unknown): unknown => {
    if (typeof value === 'string') {
      return value.replace('https://api.github.com', urls.apiUrl).replace('https://github.com', urls.webUrl).replace(/octocat(?=[/{]|$)/, login);
    }
    if (Array.isArray(value)) return value.map(rewrite);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewrite(v)]));
    return value;
  };
  return rewrite(example) as Record<string, unknown>;
}
