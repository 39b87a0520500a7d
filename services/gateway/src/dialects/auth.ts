import type { FastifyInstance } from 'fastify';
import { createClient, type Bus } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import type { RevokedSessions } from '../plugins/revocations.js';
import { callerOf, isoTime } from './shared.js';

const credentials = { type: 'string', minLength: 1, maxLength: 1024 } as const;

/**
 * Account endpoints of every dialect. POST /api/auth/login is shared by
 * RunnerHub and biRun: one handler, the union of both documents' fields.
 */
export async function authRoutes(app: FastifyInstance, options: { bus: Bus; revoked: RevokedSessions }): Promise<void> {
  const auth = createClient(options.bus, identityV1.Auth);
  const users = createClient(options.bus, identityV1.Users);

  const sessionResponse = (result: { accessToken: string; refreshToken: string; expiresIn: number; user?: identityV1.User }) => {
    const user = result.user!;
    return {
      token: result.accessToken,
      refreshToken: result.refreshToken,
      expiresIn: result.expiresIn,
      access_token: result.accessToken,
      token_type: 'bearer',
      user: {
        id: user.uid,
        number: user.number,
        username: user.username,
        email: user.email || null,
        role: user.role,
        permissions: user.permissions,
      },
    };
  };

  app.post<{ Body: { username: string; password: string } }>('/api/auth/login', {
    config: { dialect: 'runnerhub', rateLimit: 'login' },
    schema: {
      body: {
        type: 'object',
        required: ['username', 'password'],
        properties: { username: credentials, password: credentials },
      },
    },
  }, async (request) => {
    return sessionResponse(await auth.login({ identifier: request.body.username, password: request.body.password, clientAddress: request.ip }));
  });

  app.post<{ Body: { refreshToken: string } }>('/api/auth/refresh', {
    config: { dialect: 'runnerhub' },
    schema: { body: { type: 'object', required: ['refreshToken'], properties: { refreshToken: credentials } } },
  }, async (request) => sessionResponse(await auth.refresh({ refreshToken: request.body.refreshToken, clientAddress: request.ip })));

  app.post('/api/auth/logout', { config: { dialect: 'runnerhub' }, onRequest: app.authenticate }, async (request) => {
    await auth.logout({ caller: callerOf(request) });
    // This gateway refuses the session at once; the others learn it from identity's event.
    options.revoked.add(request.caller!.sessionId);
    return { success: true, message: 'Logged out', timestamp: new Date().toISOString() };
  });

  app.post<{ Body: { username: string; password: string; email: string } }>('/api/auth/register', {
    config: { dialect: 'birun', rateLimit: 'register' },
    schema: {
      body: {
        type: 'object',
        required: ['username', 'password', 'email'],
        properties: { username: { type: 'string', minLength: 1, maxLength: 64 }, password: credentials, email: { type: 'string', minLength: 3, maxLength: 254 } },
      },
    },
  }, async (request) => {
    const { user } = await auth.register({ username: request.body.username, email: request.body.email, password: request.body.password, clientAddress: request.ip });
    return { message: 'User created successfully', user: { id: user!.number, uid: user!.uid, username: user!.username, email: user!.email, role: user!.role } };
  });

  app.post<{ Body: { full_name?: string; email: string; password: string } }>('/auth/register', {
    config: { dialect: 'runnerpilot', rateLimit: 'register' },
    schema: {
      body: {
        type: 'object',
        required: ['email', 'password'],
        properties: { full_name: { type: 'string', maxLength: 200 }, email: { type: 'string', minLength: 3, maxLength: 254 }, password: credentials },
      },
    },
  }, async (request) => {
    const { user } = await auth.register({ email: request.body.email, fullName: request.body.full_name ?? '', password: request.body.password, clientAddress: request.ip });
    return { uid: user!.uid, full_name: user!.fullName, email: user!.email, created_at: isoTime(user!.createdAt) };
  });

  app.post<{ Body: { email: string; password: string } }>('/auth/login', {
    config: { dialect: 'runnerpilot', rateLimit: 'login' },
    schema: {
      body: { type: 'object', required: ['email', 'password'], properties: { email: credentials, password: credentials } },
    },
  }, async (request) => {
    const result = await auth.login({ identifier: request.body.email, password: request.body.password, clientAddress: request.ip });
    return { access_token: result.accessToken, token_type: 'Bearer', expires_in: result.expiresIn };
  });

  app.get('/common/me', { config: { dialect: 'runnerpilot' }, onRequest: app.authenticate }, async (request) => {
    const { user } = await users.getMe({ caller: callerOf(request) });
    return {
      uid: user!.uid,
      full_name: user!.fullName,
      email: user!.email,
      created_at: isoTime(user!.createdAt),
      organizations: user!.organizations.map((o) => ({ uid: o.uid, short_name: o.shortName, name: o.name })),
    };
  });
}
