import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { BusError } from '@runnerhub/bus';
import type { IdentityDb } from '../adapters/database.js';
import { Prisma } from '../generated/prisma/client.js';
import { userWithOrganizations, type Accounts, type LoginResult, type UserRecord } from './accounts.js';

/** GitHub as sign-in needs it; adapters/github.ts speaks the HTTP. */
export interface GithubClient {
  /** Trades an authorization code for an access token. */
  exchangeCode(code: string, redirectUri: string | undefined): Promise<string>;
  user(accessToken: string): Promise<GithubUser>;
  emails(accessToken: string): Promise<GithubEmail[]>;
}

export interface GithubUser {
  id: bigint;
  login: string;
  name: string | null;
}

export interface GithubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
}

export const GITHUB_SCOPE = 'read:user user:email';
const STATE_TTL_MS = 10 * 60 * 1000;

/** The state key: the dedicated secret, else one derived from SECRETS_KEY so the sealing key itself never signs. */
export function stateKey(secretsKey: string, dedicated?: string): Buffer {
  if (dedicated) return Buffer.from(dedicated, 'utf8');
  return Buffer.from(hkdfSync('sha256', Buffer.from(secretsKey, 'base64'), Buffer.alloc(0), 'runnerhub/github-oauth-state', 32));
}

/**
 * The OAuth `state`, `<payload>.<HMAC-SHA256>` in base64url: stateless, so any
 * identity instance verifies what another issued. The payload holds a nonce,
 * the expiry and the redirect URI that the code exchange must repeat.
 */
export class OAuthStates {
  constructor(
    private readonly key: Buffer,
    private readonly now: () => number = Date.now,
  ) {}

  sign(redirectUri: string | undefined): string {
    const claims = { n: randomBytes(16).toString('base64url'), exp: this.now() + STATE_TTL_MS, r: redirectUri };
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${payload}.${this.mac(payload)}`;
  }

  verify(state: string): { redirectUri: string | undefined } {
    const [payload = '', mac = '', ...rest] = state.split('.');
    const expected = Buffer.from(this.mac(payload));
    const given = Buffer.from(mac);
    if (rest.length > 0 || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new BusError('AUTH_INVALID', 'the GitHub sign-in state is invalid: start again at /auth/github');
    }
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp: number; r?: string };
    if (!(claims.exp > this.now())) throw new BusError('AUTH_INVALID', 'the GitHub sign-in took too long: start again at /auth/github');
    return { redirectUri: claims.r };
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}

export type SignInDecision<T> = { kind: 'sign-in'; user: T } | { kind: 'link'; user: T } | { kind: 'create' };

/**
 * The account a GitHub identity signs in to: the one linked to it, else a
 * password-less account with its verified email, else a new one. An account
 * with a password is never linked by email: registration does not verify
 * emails, so whoever registered the address first would own the GitHub login.
 */
export function decideSignIn<T extends Pick<UserRecord, 'active' | 'githubId' | 'passwordHash'>>(githubId: bigint, linked: T | null, sameEmail: T | null): SignInDecision<T> {
  if (linked) return { kind: 'sign-in', user: active(linked) };
  if (!sameEmail) return { kind: 'create' };
  // Linked by a concurrent first sign-in between the two reads.
  if (sameEmail.githubId === githubId) return { kind: 'sign-in', user: active(sameEmail) };
  if (sameEmail.githubId !== null) throw new BusError('RESOURCE_CONFLICT', 'the account with this email is linked to another GitHub account');
  if (sameEmail.passwordHash) throw new BusError('RESOURCE_CONFLICT', 'an account with this email already exists: sign in with its password');
  return { kind: 'link', user: active(sameEmail) };
}

/** Only GitHub's own word that the address is the user's makes it safe to link by. */
export function verifiedPrimaryEmail(emails: GithubEmail[]): string | null {
  const primary = emails.find((e) => e.primary && e.verified);
  return primary ? primary.email.trim().toLowerCase() : null;
}

/** The GitHub login first; ours need three characters where GitHub allows one. */
export function usernameCandidates(login: string, random: string): string[] {
  const base = login.length >= 3 ? login : `${login}-github`;
  return [base, `${base}-2`, `${base}-3`, `${base}-4`, `${base}-5`, `${base}-${random}`];
}

export interface GithubSignInOptions {
  /** Undefined when no OAuth app is configured. */
  github: GithubClient | undefined;
  clientId: string;
  webUrl: string;
  callbackUrl: string | undefined;
  states: OAuthStates;
}

/** RustCI's sign-in with GitHub: redirect to GitHub, then create, link or sign in the user by github_id. */
export class GithubSignIn {
  constructor(
    private readonly db: IdentityDb,
    private readonly accounts: Accounts,
    private readonly options: GithubSignInOptions,
  ) {}

  authorize(redirectUri?: string): { url: string; state: string } {
    this.client();
    const target = redirectUri || this.options.callbackUrl;
    const state = this.options.states.sign(target);
    const query = new URLSearchParams({ client_id: this.options.clientId, ...(target ? { redirect_uri: target } : {}), scope: GITHUB_SCOPE, state });
    return { url: `${this.options.webUrl.replace(/\/+$/, '')}/login/oauth/authorize?${query}`, state };
  }

  async callback(code: string, state: string): Promise<LoginResult> {
    const github = this.client();
    const { redirectUri } = this.options.states.verify(state);
    if (!code) throw BusError.validation('code is required', 'code');
    const token = await github.exchangeCode(code, redirectUri);
    const profile = await github.user(token);
    const user = await this.resolve(github, token, profile).catch((error: unknown) => {
      // Two first sign-ins of one account at once: the loser finds what the winner stored.
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') return this.resolve(github, token, profile);
      throw error;
    });
    return this.accounts.signIn(user);
  }

  private async resolve(github: GithubClient, token: string, profile: GithubUser): Promise<UserRecord> {
    const linked = await this.db.user.findUnique({ where: { githubId: profile.id }, include: userWithOrganizations });
    // A linked account needs no email; only an unlinked one is matched by it.
    const email = linked ? null : verifiedPrimaryEmail(await github.emails(token));
    const sameEmail = email ? await this.db.user.findUnique({ where: { email }, include: userWithOrganizations }) : null;
    const decision = decideSignIn(profile.id, linked, sameEmail);
    switch (decision.kind) {
      case 'sign-in':
        return decision.user;
      case 'link': {
        const linking = await this.db.user.updateMany({ where: { id: decision.user.id, githubId: null }, data: { githubId: profile.id } });
        // Linked by a concurrent sign-in meanwhile: decide again on what is stored now.
        if (linking.count === 0) return this.resolve(github, token, profile);
        return { ...decision.user, githubId: profile.id };
      }
      case 'create':
        return this.accounts.createWithPersonalOrganization({
          username: await this.freeUsername(profile.login),
          email,
          fullName: (profile.name ?? '').trim().slice(0, 200),
          passwordHash: null,
          githubId: profile.id,
        });
    }
  }

  private async freeUsername(login: string): Promise<string> {
    const candidates = usernameCandidates(login, randomBytes(3).toString('hex'));
    const taken = await this.db.user.findMany({ where: { username: { in: candidates } }, select: { username: true } });
    return candidates.find((c) => !taken.some((t) => t.username === c)) ?? candidates.at(-1)!;
  }

  private client(): GithubClient {
    if (!this.options.github) throw new BusError('SERVICE_UNAVAILABLE', 'GitHub sign-in is not configured');
    return this.options.github;
  }
}

function active<T extends Pick<UserRecord, 'active'>>(user: T): T {
  if (!user.active) throw new BusError('AUTH_INVALID', 'this account is deactivated');
  return user;
}
