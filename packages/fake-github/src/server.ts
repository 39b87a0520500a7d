import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { basicError, type FakeReply, type FakeRequest, type Route, type Surface } from './http.js';
import { GithubDescription } from './openapi.js';
import { oauthRoutes } from './routes/oauth.js';
import { emails, privateUser, userRoutes } from './routes/users.js';
import { FakeGithubState, type FakeGithubUser } from './state.js';

export interface FakeGithubOptions {
  users: FakeGithubUser[];
  clientId?: string;
  clientSecret?: string;
  /** Who approves `GET /login/oauth/authorize`; default the first user. */
  signedIn?: string;
}

export interface FakeGithub {
  /** GitHub Enterprise's layout: the REST API under `/api/v3` of the web root. */
  apiUrl: string;
  webUrl: string;
  clientId: string;
  clientSecret: string;
  /** A code as GitHub's authorize step would hand the user's browser. */
  issueCode(login: string, options?: { scope?: string; redirectUri?: string }): string;
  /** Every request received, in order, including those answered while down. */
  requests: FakeRequest[];
  /** Down: every request is answered 503, as during a GitHub outage. */
  setDown(down: boolean): void;
  /** Delays every answer, to exercise clients' timeouts. */
  setLatency(ms: number): void;
  close(): Promise<void>;
}

const API_PREFIX = '/api/v3';

/** A fake GitHub on 127.0.0.1 and a free port, for tests. */
export async function startFakeGithub(options: FakeGithubOptions): Promise<FakeGithub> {
  const description = GithubDescription.load();
  const state = new FakeGithubState(options.users, { clientId: options.clientId ?? 'fake-client-id', clientSecret: options.clientSecret ?? 'fake-client-secret' });
  const requests: FakeRequest[] = [];
  let down = false;
  let latencyMs = 0;
  let routes: Route[] = [];

  const server = createServer((req, res) => {
    void answer(req, res).catch((error: Error) => send(res, basicError(400, `fake GitHub could not handle the request: ${error.message}`)));
  });
  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const request = await parse(req);
    requests.push(request);
    if (latencyMs > 0) await sleep(latencyMs);
    if (down) return send(res, basicError(503, 'Service Unavailable'));
    const route = routes.find((r) => r.surface === request.surface && r.method === request.method && r.path === request.path);
    send(res, route ? route.handle(request) : basicError(404, 'Not Found'));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const webUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const urls = { webUrl, apiUrl: `${webUrl}${API_PREFIX}` };
  routes = [...oauthRoutes(state, () => options.signedIn ?? state.accounts[0]?.login), ...userRoutes(state, description, urls)];
  try {
    // A fixture GitHub itself could not produce fails here, not in the middle of a test.
    for (const account of state.accounts) {
      privateUser(description, account, urls);
      emails(description, account);
    }
  } catch (error) {
    server.close();
    throw error;
  }

  return {
    ...urls,
    clientId: state.app.clientId,
    clientSecret: state.app.clientSecret,
    issueCode: (login, codeOptions) => state.issueCode(login, codeOptions),
    requests,
    setDown: (value) => void (down = value),
    setLatency: (ms) => void (latencyMs = ms),
    close: () => new Promise<void>((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()));
      server.closeAllConnections();
    }),
  };
}

async function parse(req: IncomingMessage): Promise<FakeRequest> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const url = new URL(req.url ?? '/', 'http://fake');
  const surface: Surface = url.pathname === API_PREFIX || url.pathname.startsWith(`${API_PREFIX}/`) ? 'api' : 'web';
  return {
    surface,
    method: req.method ?? 'GET',
    path: surface === 'api' ? url.pathname.slice(API_PREFIX.length) || '/' : url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: req.headers,
    body: Buffer.concat(chunks).toString('utf8'),
  };
}

function send(res: ServerResponse, reply: FakeReply): void {
  const text = typeof reply.body === 'string';
  res.writeHead(reply.status, { 'content-type': text ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8', ...reply.headers });
  res.end(reply.body === undefined ? undefined : text ? reply.body : JSON.stringify(reply.body));
}
