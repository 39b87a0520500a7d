import { startFakeGithub, type FakeGithub } from './index.js';

let github: FakeGithub;

beforeAll(async () => {
  github = await startFakeGithub({
    users: [
      { login: 'ada', id: 4242, name: 'Ada Lovelace', email: 'ada@example.com' },
      { login: 'grace', emails: [{ email: 'grace@example.com', primary: true, verified: false }] },
    ],
  });
});

afterAll(async () => {
  await github?.close();
});

beforeEach(() => {
  github.setDown(false);
  github.setLatency(0);
});

async function exchange(code: string, accept = 'application/json', secret = github.clientSecret): Promise<Response> {
  return fetch(`${github.webUrl}/login/oauth/access_token`, {
    method: 'POST',
    headers: { accept, 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: github.clientId, client_secret: secret, code }),
  });
}

async function tokenFor(login: string, scope?: string): Promise<string> {
  const response = await exchange(github.issueCode(login, { scope }));
  return ((await response.json()) as { access_token: string }).access_token;
}

test('the authorize page sends the browser back to redirect_uri with a code and the client state', async () => {
  const url = new URL(`${github.webUrl}/login/oauth/authorize`);
  url.search = new URLSearchParams({ client_id: github.clientId, redirect_uri: 'http://127.0.0.1:9/cb?x=1', scope: 'read:user user:email', state: 's1' }).toString();
  const response = await fetch(url, { redirect: 'manual' });
  expect(response.status).toBe(302);
  const location = new URL(response.headers.get('location')!);
  expect(`${location.origin}${location.pathname}`).toBe('http://127.0.0.1:9/cb');
  expect(location.searchParams.get('x')).toBe('1');
  expect(location.searchParams.get('state')).toBe('s1');
  expect(location.searchParams.get('code')).toMatch(/^[0-9a-f]{20}$/);
});

test('a code is exchanged once for a bearer token, as JSON when asked and form-encoded otherwise', async () => {
  const code = github.issueCode('ada');
  const first = await exchange(code);
  expect(await first.json()).toEqual({ access_token: expect.stringMatching(/^gho_/), token_type: 'bearer', scope: 'read:user,user:email' });
  const again = await exchange(code);
  expect(await again.json()).toMatchObject({ error: 'bad_verification_code' });

  const form = await exchange(github.issueCode('ada'), '*/*');
  expect(form.headers.get('content-type')).toContain('application/x-www-form-urlencoded');
  expect(new URLSearchParams(await form.text()).get('token_type')).toBe('bearer');
});

test('wrong client credentials are refused with GitHub error fields and a 200, as GitHub answers', async () => {
  const response = await exchange(github.issueCode('ada'), 'application/json', 'wrong');
  expect(response.status).toBe(200);
  expect(await response.json()).toMatchObject({ error: 'incorrect_client_credentials', error_description: expect.any(String) });
});

test('GET /user answers the documented private-user shape for the token owner, with links to the fake', async () => {
  const response = await fetch(`${github.apiUrl}/user`, { headers: { authorization: `Bearer ${await tokenFor('ada')}` } });
  expect(response.status).toBe(200);
  const user = (await response.json()) as Record<string, unknown>;
  expect(user).toMatchObject({ login: 'ada', id: 4242, name: 'Ada Lovelace', email: 'ada@example.com', type: 'User', url: `${github.apiUrl}/users/ada` });
  expect(JSON.stringify(user)).not.toContain('api.github.com');
});

test('GET /user/emails lists the emails, and hides them from a token without an email scope', async () => {
  const withScope = await fetch(`${github.apiUrl}/user/emails`, { headers: { authorization: `token ${await tokenFor('grace')}` } });
  expect(await withScope.json()).toEqual([{ email: 'grace@example.com', primary: true, verified: false, visibility: null }]);
  const without = await fetch(`${github.apiUrl}/user/emails`, { headers: { authorization: `Bearer ${await tokenFor('grace', 'read:user')}` } });
  expect(without.status).toBe(404);
});

test('the API refuses a missing or unknown token with 401 Bad credentials', async () => {
  for (const headers of [{}, { authorization: 'Bearer gho_unknown' }] as Array<Record<string, string>>) {
    const response = await fetch(`${github.apiUrl}/user`, { headers });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ message: 'Bad credentials' });
  }
});

test('the API lives under /api/v3 only: the web root does not serve it', async () => {
  const response = await fetch(`${github.webUrl}/user`, { headers: { authorization: `Bearer ${await tokenFor('ada')}` } });
  expect(response.status).toBe(404);
});

test('while down every request is recorded and answered 503', async () => {
  github.setDown(true);
  const before = github.requests.length;
  const response = await fetch(`${github.apiUrl}/user`);
  expect(response.status).toBe(503);
  expect(github.requests.slice(before)).toEqual([expect.objectContaining({ surface: 'api', method: 'GET', path: '/user' })]);
});

test('latency delays every answer', async () => {
  github.setLatency(150);
  const started = Date.now();
  await fetch(`${github.apiUrl}/user`);
  expect(Date.now() - started).toBeGreaterThanOrEqual(140);
});

test('a user GitHub could not have is refused at start', async () => {
  await expect(startFakeGithub({ users: [{ login: 'bad', emails: [{ email: 'not an email', primary: true, verified: true }] }] })).rejects.toThrow(/does not match GitHub's schema/);
});
