import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { BusError, ERROR_STATUS } from '@runnerhub/bus';
import { dialectOfPath, errorBody, validationStatus, type ApiError, type Dialect } from '../dialects/errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    dialect?: Dialect;
  }
}

function dialectOf(request: FastifyRequest): Dialect {
  return request.routeOptions.config?.dialect ?? dialectOfPath(request.url);
}

function validationField(error: FastifyError): string {
  const first = error.validation?.[0];
  if (!first) return '';
  const missing = (first.params as { missingProperty?: string }).missingProperty;
  return missing ?? first.instancePath.replace(/^\//, '').replace(/\//g, '.');
}

/** Every failure becomes the route's dialect error body; nothing unexpected leaks. */
export function toApiError(error: FastifyError | BusError | Error, dialect: Dialect): ApiError {
  if (error instanceof BusError) {
    const status = error.code === 'VALIDATION_ERROR' ? validationStatus(dialect) : error.status;
    return { status, code: error.code, message: error.message, details: error.details || undefined, field: error.field || undefined };
  }
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const field = validationField(fastifyError);
    return { status: validationStatus(dialect), code: 'VALIDATION_ERROR', message: `invalid request: ${fastifyError.message}`, field: field || undefined };
  }
  const status = fastifyError.statusCode ?? 500;
  if (status === 413) return { status, code: 'VALIDATION_ERROR', message: 'request body is too large' };
  if (status === 415) return { status, code: 'VALIDATION_ERROR', message: 'unsupported content type: send application/json' };
  if (status === 429) return { status, code: 'RATE_LIMIT_EXCEEDED', message: fastifyError.message };
  if (status >= 400 && status < 500) return { status: status === 400 ? validationStatus(dialect) : status, code: 'VALIDATION_ERROR', message: fastifyError.message };
  return { status: ERROR_STATUS.INTERNAL_ERROR, code: 'INTERNAL_ERROR', message: 'internal error' };
}

export const errorsPlugin = fp(async (app: FastifyInstance) => {
  app.setErrorHandler((error: FastifyError | BusError, request, reply) => {
    const dialect = dialectOf(request);
    const apiError = toApiError(error, dialect);
    if (apiError.status >= 500) request.log.error({ err: error }, 'request failed');
    return reply.status(apiError.status).send(errorBody(dialect, apiError, request.id));
  });
  app.setNotFoundHandler((request, reply) => {
    const dialect = dialectOfPath(request.url);
    return reply.status(404).send(errorBody(dialect, { status: 404, code: 'RESOURCE_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` }, request.id));
  });
});
