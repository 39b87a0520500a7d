import fp from 'fastify-plugin';
import { BusError } from '@runnerhub/bus';

/**
 * JSON bodies with NUL characters are refused up front: PostgreSQL cannot
 * store them in text, so letting one through would turn bad input into a 500.
 */
export const jsonPlugin = fp(async (app) => {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (text.includes('\\u0000') || text.includes('\0')) {
      done(BusError.validation('strings may not contain NUL characters'), undefined);
      return;
    }
    parse(request, text, done);
  });
});
