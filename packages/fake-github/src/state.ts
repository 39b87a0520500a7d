import { randomBytes } from 'node:crypto';

export interface FakeGithubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
  visibility?: 'public' | 'private' | null;
}

export interface FakeGithubUser {
  login: string;
  /** Default: a unique number from 1000 on. */
  id?: number;
  name?: string | null;
  /** The public profile email `GET /user` shows; default none. */
  email?: string | null;
  /** What `GET /user/emails` lists; default the public email, primary and verified. */
  emails?: FakeGithubEmail[];
}

export interface FakeOAuthApp {
  clientId: string;
  clientSecret: string;
}

export type Account = Required<FakeGithubUser>;

interface Grant {
  login: string;
  clientId: string;
  scopes: string[];
  redirectUri: string | undefined;
  expiresAt: number;
}

/** GitHub's codes live ten minutes and work once. */
const CODE_TTL_MS = 10 * 60 * 1000;
export const DEFAULT_SCOPE = 'read:user user:email';

/** The fake's world: accounts, the OAuth app, and the codes and tokens it has handed out. */
export class FakeGithubState {
  readonly accounts: Account[];
  private readonly codes = new Map<string, Grant>();
  private readonly tokens = new Map<string, { login: string; scopes: string[] }>();

  constructor(users: FakeGithubUser[], readonly app: FakeOAuthApp) {
    this.accounts = users.map((user, index) => ({
      login: user.login,
      id: user.id ?? 1000 + index,
      name: user.name ?? null,
      email: user.email ?? null,
      emails: user.emails ?? (user.email ? [{ email: user.email, primary: true, verified: true, visibility: 'public' }] : []),
    }));
  }

  account(login: string): Account {
    const account = this.accounts.find((a) => a.login === login);
    if (!account) throw new Error(`fake GitHub has no user ${login}`);
    return account;
  }

  issueCode(login: string, options: { scope?: string; redirectUri?: string } = {}): string {
    this.account(login);
    const code = randomBytes(10).toString('hex');
    const scopes = (options.scope ?? DEFAULT_SCOPE).split(/[\s,]+/).filter(Boolean);
    this.codes.set(code, { login, clientId: this.app.clientId, scopes, redirectUri: options.redirectUri, expiresAt: Date.now() + CODE_TTL_MS });
    return code;
  }

  /** Spends a code; the error names are GitHub's. */
  redeemCode(params: Record<string, string>): { token: string; scopes: string[] } | { error: string } {
    if (params.client_id !== this.app.clientId || params.client_secret !== this.app.clientSecret) return { error: 'incorrect_client_credentials' };
    const grant = this.codes.get(params.code ?? '');
    if (!grant || grant.clientId !== params.client_id || grant.expiresAt < Date.now()) return { error: 'bad_verification_code' };
    if (grant.redirectUri !== undefined && params.redirect_uri !== undefined && params.redirect_uri !== grant.redirectUri) return { error: 'redirect_uri_mismatch' };
    this.codes.delete(params.code!);
    const token = `gho_${randomBytes(18).toString('base64url')}`;
    this.tokens.set(token, { login: grant.login, scopes: grant.scopes });
    return { token, scopes: grant.scopes };
  }

  /** The account and scopes behind `Authorization: Bearer …` or `token …`, if any. */
  bearer(authorization: string | undefined): { account: Account; scopes: string[] } | undefined {
    const token = /^(?:bearer|token)\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    const grant = token ? this.tokens.get(token) : undefined;
    return grant && { account: this.account(grant.login), scopes: grant.scopes };
  }
}
