import { columnOf, fieldOf, recordsetJson } from './recordset.js';

test('field and column names convert both ways', () => {
  expect(columnOf('serverMaxSessions')).toBe('server_max_sessions');
  expect(fieldOf('server_max_sessions')).toBe('serverMaxSessions');
  expect(fieldOf(columnOf('createdBy'))).toBe('createdBy');
});

test('rows become one JSON array keyed by column, values as given', () => {
  expect(JSON.parse(recordsetJson([{ id: 'a', actorId: null, statusCode: 200, args: ['x y'] }]))).toEqual([{ id: 'a', actor_id: null, status_code: 200, args: ['x y'] }]);
});
