import { BusError } from '@runnerhub/bus';
import type { FastifyError } from 'fastify';
import { toApiError } from './errors.js';

function fastifyError(props: Partial<FastifyError>): FastifyError {
  return Object.assign(new Error(props.message ?? 'x'), props) as FastifyError;
}

test('a bus error keeps its code and status, and a validation error follows the dialect', () => {
  expect(toApiError(new BusError('RESOURCE_CONFLICT', 'taken', '', 'email'), 'runnerhub')).toEqual({ status: 409, code: 'RESOURCE_CONFLICT', message: 'taken', details: undefined, field: 'email' });
  expect(toApiError(BusError.validation('bad', 'name'), 'birun').status).toBe(422);
});

test('schema validation names the missing field', () => {
  const error = fastifyError({ message: "body must have required property 'email'", validation: [{ keyword: 'required', instancePath: '', schemaPath: '', params: { missingProperty: 'email' }, message: '' }] as never, validationContext: 'body' });
  expect(toApiError(error, 'runnerpilot')).toMatchObject({ status: 400, code: 'VALIDATION_ERROR', field: 'email' });
});

test('oversized and malformed bodies are client errors, unknown failures an opaque 500', () => {
  expect(toApiError(fastifyError({ statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' }), 'runnerhub')).toMatchObject({ status: 413, code: 'VALIDATION_ERROR' });
  expect(toApiError(fastifyError({ statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY', message: 'Unexpected end of JSON' }), 'birun')).toMatchObject({ status: 422, code: 'VALIDATION_ERROR' });
  expect(toApiError(new Error('secret connection string in message'), 'newremora')).toEqual({ status: 500, code: 'INTERNAL_ERROR', message: 'internal error' });
});
