import { startFakeGithub, type FakeGithub } from '@runnerhub/fake-github';
import { freePort } from '@runnerhub/infra';
import type { Stack } from '@runnerhub/stack';
import { request, startTestStack } from './harness.js';

let github: FakeGithub;
let stack: Stack & { dispose(): Promise<void> };
let base: string;

beforeAll(async () => {
  github = await startFakeGithub({ users: [{ login: 'octo-ada', id: 583231, name: 'Ada Octo', email: 'ada.octo@example.com' }] });
  const gateway = await freePort();
  stack = await startTestStack({
    ports: { gateway, metricsBase: 0 },
    serviceEnv: {
      identity: {
        GITHUB_API_URL: github.apiUrl,
        GITHUB_WEB_URL: github.webUrl,
        GITHUB_CLIENT_ID: github.clientId,
        GITHUB_CLIENT_SECRET: github.clientSecret,
        GITHUB_OAUTH_CALLBACK_URL: `http://127.0.0.1:${gateway}/v1/auth/github/callback`,
      },
    },
  });
  base = stack.gatewayUrl;
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
  await github?.close();
}, 60_000);

afterEach(() => github.setDown(false));

/** Follows one redirect by hand, as a browser would, and returns where it points. */
async function redirectOf(url: string): Promise<URL> {
  const response = await fetch(url, { redirect: 'manual' });
  expect(response.status).toBe(302);
  return new URL(response.headers.get('location')!);
}

test('GET /v1/auth/github redirects to GitHub, GitHub back to the callback, which answers a token that the API accepts', async () => {
  const authorize = await redirectOf(`${base}/v1/auth/github`);
  expect(`${authorize.origin}${authorize.pathname}`).toBe(`${github.webUrl}/login/oauth/authorize`);
  expect(authorize.searchParams.get('client_id')).toBe(github.clientId);
  expect(authorize.searchParams.get('redirect_uri')).toBe(`${base}/v1/auth/github/callback`);
  expect(authorize.searchParams.get('scope')).toBe('read:user user:email');
  expect(authorize.searchParams.get('state')).toMatch(/^[\w-]+\.[\w-]+$/);

  const callback = await redirectOf(authorize.toString());
  expect(`${callback.origin}${callback.pathname}`).toBe(`${base}/v1/auth/github/callback`);
  const { status, body } = await request(base, 'GET', `${callback.pathname}${callback.search}`);
  expect(status).toBe(200);
  expect(body).toEqual({
    token: expect.any(String),
    access_token: body.token,
    token_type: 'Bearer',
    expires_in: 3600,
    refresh_token: expect.stringMatching(/^rht_/),
    user: { id: expect.stringMatching(/^[0-9a-f-]{36}$/), username: 'octo-ada', email: 'ada.octo@example.com', github_id: '583231' },
  });

  const me = await request(base, 'GET', '/common/me', { token: body.token });
  expect(me.status).toBe(200);
  expect(me.body).toMatchObject({ uid: body.user.id, full_name: 'Ada Octo', email: 'ada.octo@example.com' });
  const rustciMe = await request(base, 'GET', '/v1/api/users/me', { token: body.access_token });
  expect(rustciMe.body).toMatchObject({ id: body.user.id, github_id: '583231' });
});

test('a tampered state is a 401 in RustCI\'s error format, and GitHub is never asked', async () => {
  const authorize = await redirectOf(`${base}/v1/auth/github`);
  const state = authorize.searchParams.get('state')!;
  const before = github.requests.length;
  const { status, body } = await request(base, 'GET', `/v1/auth/github/callback?code=${github.issueCode('octo-ada')}&state=${state.replace(/^./, (c) => (c === 'a' ? 'b' : 'a'))}`);
  expect(status).toBe(401);
  expect(body).toEqual({ error: { type: 'authentication_error', message: expect.stringContaining('state'), details: null, timestamp: expect.any(String), correlation_id: expect.any(String) } });
  expect(github.requests.length).toBe(before);
});

test('a callback without a code is a 400, and a declined authorization is a 401', async () => {
  const missing = await request(base, 'GET', '/v1/auth/github/callback?state=x');
  expect(missing.status).toBe(400);
  expect(missing.body.error).toMatchObject({ type: 'validation_error', message: 'code is required' });
  const declined = await request(base, 'GET', '/v1/auth/github/callback?error=access_denied&error_description=The+user+has+denied+your+application+access.&state=x');
  expect(declined.status).toBe(401);
  expect(declined.body.error.message).toContain('denied');
});

test('GitHub down makes the callback a 503 in RustCI\'s error format', async () => {
  const authorize = await redirectOf(`${base}/v1/auth/github`);
  const callback = await redirectOf(authorize.toString());
  github.setDown(true);
  const { status, body } = await request(base, 'GET', `${callback.pathname}${callback.search}`);
  expect(status).toBe(503);
  expect(body.error).toMatchObject({ type: 'service_unavailable', message: 'GitHub answered 503' });
});
