import CircuitBreaker from 'opossum';
import { z } from 'zod';
import { BusError } from '@runnerhub/bus';
import type { GithubClient, GithubEmail, GithubUser } from '../domain/github-oauth.js';

export interface GithubHttpOptions {
  apiUrl: string;
  webUrl: string;
  clientId: string;
  clientSecret: string;
  timeoutMs: number;
  /** How long an open circuit fails fast before one call is tried again. */
  resetMs: number;
  onCircuit?: (state: 'open' | 'halfOpen' | 'close') => void;
}

interface Answer {
  status: number;
  body: unknown;
}

const tokenAnswer = z.union([
  z.object({ access_token: z.string().min(1) }),
  z.object({ error: z.string(), error_description: z.string().optional() }),
]);
const userAnswer = z.object({ id: z.number().int().positive(), login: z.string().min(1), name: z.string().nullable().optional() });
const emailsAnswer = z.array(z.object({ email: z.string(), primary: z.boolean(), verified: z.boolean() }));

/**
 * GitHub over HTTP. Every call has a timeout, and all share one circuit
 * breaker: once GitHub fails repeatedly, sign-ins fail at once instead of each
 * waiting out the timeout. Only an outage trips it (no answer, 5xx, 429);
 * GitHub refusing a code is an answer, not an outage.
 */
export class GithubHttp implements GithubClient {
  private readonly breaker: CircuitBreaker<[() => Promise<Answer>], Answer>;

  constructor(private readonly options: GithubHttpOptions) {
    this.breaker = new CircuitBreaker((call: () => Promise<Answer>) => call(), {
      // Each fetch carries its own AbortSignal.timeout, which also stops it.
      timeout: false,
      resetTimeout: options.resetMs,
      rollingCountTimeout: 10_000,
      volumeThreshold: 5,
      errorThresholdPercentage: 50,
    });
    this.breaker.on('open', () => options.onCircuit?.('open'));
    this.breaker.on('halfOpen', () => options.onCircuit?.('halfOpen'));
    this.breaker.on('close', () => options.onCircuit?.('close'));
  }

  async exchangeCode(code: string, redirectUri: string | undefined): Promise<string> {
    const { clientId, clientSecret } = this.options;
    const answer = await this.send(`${trim(this.options.webUrl)}/login/oauth/access_token`, 'application/json', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: clientId, client_secret: clientSecret, code, ...(redirectUri ? { redirect_uri: redirectUri } : {}) }),
    });
    // GitHub answers a refused exchange with 200 and an `error` field.
    const result = answer.status === 200 ? tokenAnswer.safeParse(answer.body) : undefined;
    if (!result?.success) throw unexpected('the code exchange', answer.status);
    if ('access_token' in result.data) return result.data.access_token;
    if (result.data.error === 'incorrect_client_credentials') {
      throw new BusError('SERVICE_UNAVAILABLE', 'GitHub sign-in is misconfigured: GitHub refused the client ID or secret');
    }
    throw new BusError('AUTH_INVALID', `GitHub refused the sign-in code (${result.data.error}): start again at /auth/github`);
  }

  async user(accessToken: string): Promise<GithubUser> {
    const answer = await this.api('/user', accessToken);
    const user = userAnswer.safeParse(answer.body);
    if (answer.status !== 200 || !user.success) throw unexpected('GET /user', answer.status);
    return { id: BigInt(user.data.id), login: user.data.login, name: user.data.name ?? null };
  }

  async emails(accessToken: string): Promise<GithubEmail[]> {
    const answer = await this.api('/user/emails', accessToken);
    // GitHub hides the list from a token without an email scope: no email is known then.
    if (answer.status === 403 || answer.status === 404) return [];
    const emails = emailsAnswer.safeParse(answer.body);
    if (answer.status !== 200 || !emails.success) throw unexpected('GET /user/emails', answer.status);
    return emails.data;
  }

  private async api(path: string, accessToken: string): Promise<Answer> {
    const answer = await this.send(`${trim(this.options.apiUrl)}${path}`, 'application/vnd.github+json', {
      headers: { authorization: `Bearer ${accessToken}`, 'x-github-api-version': '2022-11-28' },
    });
    if (answer.status === 401) throw new BusError('AUTH_INVALID', 'GitHub did not accept the access token it issued: start again at /auth/github');
    return answer;
  }

  private async send(url: string, accept: string, init: RequestInit): Promise<Answer> {
    try {
      return await this.breaker.fire(() => this.fetch(url, accept, init));
    } catch (error) {
      if ((error as { code?: string }).code === 'EOPENBREAKER') {
        throw new BusError('SERVICE_UNAVAILABLE', 'GitHub is failing: sign-in with GitHub is paused for a short while, try again later');
      }
      throw error;
    }
  }

  private async fetch(url: string, accept: string, init: RequestInit): Promise<Answer> {
    let status: number;
    let text: string;
    try {
      const response = await fetch(url, {
        ...init,
        headers: { accept, 'user-agent': 'runnerhub-identity', ...init.headers },
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      const reason = (error as Error).name === 'TimeoutError'
        ? `did not answer within ${this.options.timeoutMs} ms`
        : `is unreachable (${((error as Error).cause as Error | undefined)?.message ?? (error as Error).message})`;
      throw new BusError('SERVICE_UNAVAILABLE', `GitHub ${reason}`);
    }
    if (status >= 500 || status === 429) throw new BusError('SERVICE_UNAVAILABLE', `GitHub answered ${status}`);
    return { status, body: parseJson(text) };
  }
}

function unexpected(what: string, status: number): BusError {
  return new BusError('SERVICE_UNAVAILABLE', `GitHub answered ${what} unexpectedly (HTTP ${status})`);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function trim(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, '');
}
