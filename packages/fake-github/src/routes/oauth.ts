import { paramsOf, type FakeReply, type Route } from '../http.js';
import type { FakeGithubState } from '../state.js';

const ERROR_DESCRIPTIONS: Record<string, string> = {
  incorrect_client_credentials: 'The client_id and/or client_secret passed are incorrect.',
  bad_verification_code: 'The code passed is incorrect or expired.',
  redirect_uri_mismatch: 'The redirect_uri MUST match the registered callback URL for this application.',
};

/** The OAuth web flow (docs.github.com "Authorizing OAuth apps"); GitHub answers its errors with 200. */
export function oauthRoutes(state: FakeGithubState, signedIn: () => string | undefined): Route[] {
  return [
    {
      surface: 'web',
      method: 'GET',
      path: '/login/oauth/authorize',
      // The signed-in test user approves at once: GitHub sends the browser back with a code.
      handle(request) {
        const { client_id: clientId, redirect_uri: redirectUri, scope, state: clientState } = request.query;
        if (clientId !== state.app.clientId) return { status: 404, body: 'Not Found' };
        if (!redirectUri) return { status: 400, body: 'the fake needs redirect_uri: it has no registered callback URL' };
        const login = signedIn();
        if (!login) return { status: 403, body: 'no user is signed in to the fake GitHub' };
        const target = new URL(redirectUri);
        target.searchParams.set('code', state.issueCode(login, { scope, redirectUri }));
        if (clientState !== undefined) target.searchParams.set('state', clientState);
        return { status: 302, headers: { location: target.toString() } };
      },
    },
    {
      surface: 'web',
      method: 'POST',
      path: '/login/oauth/access_token',
      handle(request) {
        const result = state.redeemCode(paramsOf(request));
        const fields: Record<string, string> = 'error' in result
          ? { error: result.error, error_description: ERROR_DESCRIPTIONS[result.error]!, error_uri: 'https://docs.github.com/apps/oauth' }
          : { access_token: result.token, token_type: 'bearer', scope: result.scopes.join(',') };
        return tokenReply(request.headers.accept ?? '', fields);
      },
    },
  ];
}

/** Form-encoded unless the client asks for JSON, as GitHub does. */
function tokenReply(accept: string, fields: Record<string, string>): FakeReply {
  if (accept.includes('application/json')) return { status: 200, body: fields };
  return { status: 200, headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body: new URLSearchParams(fields).toString() };
}
