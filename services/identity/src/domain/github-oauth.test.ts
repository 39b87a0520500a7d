import { randomBytes } from 'node:crypto';
import { decideSignIn, GithubSignIn, OAuthStates, stateKey, usernameCandidates, verifiedPrimaryEmail, type GithubClient } from './github-oauth.js';

const secretsKey = randomBytes(32).toString('base64');

describe('OAuth state', () => {
  let now = 1_700_000_000_000;
  const states = new OAuthStates(stateKey(secretsKey), () => now);

  test('a signed state verifies and returns the redirect URI it was issued for', () => {
    expect(states.verify(states.sign('https://ci.example.com/v1/auth/github/callback'))).toEqual({ redirectUri: 'https://ci.example.com/v1/auth/github/callback' });
    expect(states.verify(states.sign(undefined))).toEqual({ redirectUri: undefined });
  });

  test('every state is different, thanks to its nonce', () => {
    expect(states.sign(undefined)).not.toBe(states.sign(undefined));
  });

  test('a state whose payload or signature was changed is AUTH_INVALID', () => {
    const [payload, mac] = states.sign('https://ci.example.com/cb').split('.') as [string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...claims, r: 'https://evil.example.com/cb' })).toString('base64url');
    const flipped = `${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`;
    for (const state of [`${forged}.${mac}`, `${payload}.${flipped}`, `${payload}.`, payload, '', `${payload}.${mac}.x`, 'garbage.garbage']) {
      expect(() => states.verify(state)).toThrow(expect.objectContaining({ code: 'AUTH_INVALID', message: expect.stringContaining('invalid') }));
    }
  });

  test('a state signed with another key is AUTH_INVALID', () => {
    const other = new OAuthStates(stateKey(randomBytes(32).toString('base64')), () => now);
    expect(() => states.verify(other.sign(undefined))).toThrow(expect.objectContaining({ code: 'AUTH_INVALID' }));
  });

  test('a state expires ten minutes after it was issued', () => {
    const state = states.sign(undefined);
    now += 10 * 60 * 1000 - 1;
    expect(() => states.verify(state)).not.toThrow();
    now += 1;
    expect(() => states.verify(state)).toThrow(expect.objectContaining({ code: 'AUTH_INVALID', message: expect.stringContaining('too long') }));
  });

  test('the dedicated secret replaces the key derived from SECRETS_KEY, and the derived key is not SECRETS_KEY', () => {
    expect(stateKey(secretsKey).equals(stateKey(secretsKey))).toBe(true);
    expect(stateKey(secretsKey).equals(Buffer.from(secretsKey, 'base64'))).toBe(false);
    expect(stateKey(secretsKey, 'dedicated').equals(stateKey(secretsKey))).toBe(false);
  });
});

describe('create, link or sign in', () => {
  const user = (fields: { active?: boolean; githubId?: bigint | null; passwordHash?: string | null } = {}) => ({ active: true, githubId: null, passwordHash: null, ...fields });

  test('an account already linked to the GitHub id signs in, whatever the email says', () => {
    const linked = user({ githubId: 7n });
    expect(decideSignIn(7n, linked, null)).toEqual({ kind: 'sign-in', user: linked });
  });

  test('an unlinked password-less account with the verified email is linked', () => {
    const sameEmail = user();
    expect(decideSignIn(7n, null, sameEmail)).toEqual({ kind: 'link', user: sameEmail });
  });

  test('an account with a password is never linked by email: its owner may not be the address owner', () => {
    expect(() => decideSignIn(7n, null, user({ passwordHash: '$argon2id$…' }))).toThrow(expect.objectContaining({ code: 'RESOURCE_CONFLICT' }));
  });

  test('without either, a new account is created', () => {
    expect(decideSignIn(7n, null, null)).toEqual({ kind: 'create' });
  });

  test('an account found by email that this GitHub account linked meanwhile signs in', () => {
    const linkedMeanwhile = user({ githubId: 7n });
    expect(decideSignIn(7n, null, linkedMeanwhile)).toEqual({ kind: 'sign-in', user: linkedMeanwhile });
  });

  test('an account with the email but linked to another GitHub account is a conflict, never relinked', () => {
    expect(() => decideSignIn(7n, null, user({ githubId: 8n }))).toThrow(expect.objectContaining({ code: 'RESOURCE_CONFLICT' }));
  });

  test('a deactivated account neither signs in nor gets linked', () => {
    expect(() => decideSignIn(7n, user({ active: false, githubId: 7n }), null)).toThrow(expect.objectContaining({ code: 'AUTH_INVALID' }));
    expect(() => decideSignIn(7n, null, user({ active: false }))).toThrow(expect.objectContaining({ code: 'AUTH_INVALID' }));
  });

  test('only the primary email, and only when GitHub verified it, is used', () => {
    expect(verifiedPrimaryEmail([{ email: 'Other@Example.com', primary: false, verified: true }, { email: 'Ada@Example.com', primary: true, verified: true }])).toBe('ada@example.com');
    expect(verifiedPrimaryEmail([{ email: 'ada@example.com', primary: true, verified: false }])).toBeNull();
    expect(verifiedPrimaryEmail([])).toBeNull();
  });

  test('the username is the GitHub login, then numbered, then random; short logins are lengthened', () => {
    expect(usernameCandidates('octocat', 'abc123')).toEqual(['octocat', 'octocat-2', 'octocat-3', 'octocat-4', 'octocat-5', 'octocat-abc123']);
    expect(usernameCandidates('x', 'abc123')[0]).toBe('x-github');
  });
});

describe('GithubSignIn without a database', () => {
  const github: GithubClient = {
    exchangeCode: async () => 'token',
    user: async () => ({ id: 1n, login: 'ada', name: null }),
    emails: async () => [],
  };
  const states = new OAuthStates(stateKey(secretsKey));
  const signIn = (client: GithubClient | undefined, callbackUrl?: string) =>
    new GithubSignIn(undefined as never, undefined as never, { github: client, clientId: 'client-1', webUrl: 'https://github.example.com/', callbackUrl, states });

  test('authorize points at GitHub with the client id, the callback, the scopes and a verifiable state', () => {
    const { url, state } = signIn(github, 'https://ci.example.com/v1/auth/github/callback').authorize();
    const target = new URL(url);
    expect(`${target.origin}${target.pathname}`).toBe('https://github.example.com/login/oauth/authorize');
    expect(Object.fromEntries(target.searchParams)).toEqual({
      client_id: 'client-1',
      redirect_uri: 'https://ci.example.com/v1/auth/github/callback',
      scope: 'read:user user:email',
      state,
    });
    expect(states.verify(state).redirectUri).toBe('https://ci.example.com/v1/auth/github/callback');
  });

  test('without a configured callback URL, the redirect_uri is left to the OAuth app setting', () => {
    expect(new URL(signIn(github).authorize().url).searchParams.has('redirect_uri')).toBe(false);
  });

  test('without an OAuth app both steps are SERVICE_UNAVAILABLE "GitHub sign-in is not configured"', async () => {
    const unconfigured = signIn(undefined);
    const expected = { code: 'SERVICE_UNAVAILABLE', message: 'GitHub sign-in is not configured' };
    expect(() => unconfigured.authorize()).toThrow(expect.objectContaining(expected));
    await expect(unconfigured.callback('code', 'state')).rejects.toMatchObject(expected);
  });

  test('a bad state is refused before GitHub is asked anything', async () => {
    const calls: string[] = [];
    const spy: GithubClient = { ...github, exchangeCode: async (code) => (calls.push(code), 'token') };
    await expect(signIn(spy).callback('code', 'forged.state')).rejects.toMatchObject({ code: 'AUTH_INVALID' });
    expect(calls).toEqual([]);
  });
});
