import type { IncomingHttpHeaders } from 'node:http';

/** GitHub serves its web pages and its REST API from different roots. */
export type Surface = 'web' | 'api';

export interface FakeRequest {
  surface: Surface;
  method: string;
  /** The path below the surface's root, e.g. `/user` for `${apiUrl}/user`. */
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface FakeReply {
  status: number;
  headers?: Record<string, string>;
  /** Sent as JSON unless it is a string. */
  body?: unknown;
}

export interface Route {
  surface: Surface;
  method: string;
  path: string;
  handle(request: FakeRequest): FakeReply;
}

/** Form fields of a request, from its query, a form body or a JSON body, as GitHub accepts all three. */
export function paramsOf(request: FakeRequest): Record<string, string> {
  const type = request.headers['content-type'] ?? '';
  let body: Record<string, string> = {};
  if (type.includes('application/json') && request.body) body = JSON.parse(request.body) as Record<string, string>;
  else if (request.body) body = Object.fromEntries(new URLSearchParams(request.body));
  return { ...request.query, ...body };
}

export function basicError(status: number, message: string): FakeReply {
  return { status, body: { message, documentation_url: 'https://docs.github.com/rest', status: String(status) } };
}
