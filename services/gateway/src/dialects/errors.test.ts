import { dialectOfPath, errorBody, validationStatus } from './errors.js';

const notFound = { status: 404, code: 'RESOURCE_NOT_FOUND', message: 'Server not found' } as const;

test('each dialect gets its own documented error body', () => {
  expect(errorBody('runnerhub', { ...notFound, field: 'id' }, 'req-1')).toEqual({
    success: false,
    error: { code: 'RESOURCE_NOT_FOUND', message: 'Server not found', details: null, field: 'id' },
    timestamp: expect.any(String),
  });
  expect(errorBody('rustci', notFound, 'req-1')).toEqual({
    error: { type: 'not_found', message: 'Server not found', details: null, timestamp: expect.any(String), correlation_id: 'req-1' },
  });
  expect(errorBody('birun', notFound, 'req-1')).toEqual({ error: 'Server not found', status: 'error', details: { code: 'RESOURCE_NOT_FOUND', field: null, info: null } });
  expect(errorBody('newremora', notFound, 'req-1')).toEqual({ success: false, data: null, error: 'Server not found', request_id: 'req-1', timestamp: expect.any(String) });
  const { timestamp: _pilotTime, ...pilot } = errorBody('runnerpilot', notFound, 'req-1');
  const { timestamp: _hubTime, ...hub } = errorBody('runnerhub', notFound, 'req-1');
  expect(pilot).toEqual(hub);
});

test('biRun validation failures are 422 like FastAPI, the rest 400', () => {
  expect(validationStatus('birun')).toBe(422);
  expect(validationStatus('newremora')).toBe(400);
  expect(validationStatus('runnerhub')).toBe(400);
});

test.each([
  ['/api/v1/jobs/1', 'newremora'],
  ['/v1/pipelines', 'rustci'],
  ['/api/servers/3', 'birun'],
  ['/api/server-groups/', 'birun'],
  ['/org/GT/nodes', 'runnerpilot'],
  ['/auth/login', 'runnerpilot'],
  ['/api/jobs', 'runnerhub'],
  ['/api/auth/login', 'runnerhub'],
])('a path no route matched, %s, belongs to %s', (path, dialect) => {
  expect(dialectOfPath(path)).toBe(dialect);
});
