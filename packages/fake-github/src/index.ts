/**
 * A fake GitHub for tests, on 127.0.0.1. Layout for growth: `state.ts` holds
 * the fake's world, `routes/<area>.ts` one module per GitHub area (OAuth web
 * flow, users; later installations, runners, webhooks), each answering with
 * GitHub's documented examples checked against its schemas (`openapi.ts`).
 */
export { startFakeGithub, type FakeGithub, type FakeGithubOptions } from './server.js';
export type { FakeGithubEmail, FakeGithubUser } from './state.js';
export type { FakeRequest } from './http.js';
