import type { FastifyInstance } from 'fastify';
import { createClient, type Bus } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import { callerOf, isoTime } from './shared.js';

const organizationBody = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    short_name: { type: 'string', minLength: 1, maxLength: 32 },
    type: { type: 'string', enum: ['personal', 'organization'] },
  },
} as const;

interface OrganizationBody {
  name: string;
  short_name: string;
  type?: string;
}

/** Runner Pilot's organisation object; `uid` is added (DESIGN.md §1). */
function pilotOrganization(organization: identityV1.Organization) {
  return {
    uid: organization.uid,
    name: organization.name,
    short_name: organization.shortName,
    type: organization.type,
    created_at: isoTime(organization.createdAt),
  };
}

/** Runner Pilot's organisations; `{org_id}` is an organisation's uid or short_name. */
export async function organizationRoutes(app: FastifyInstance, options: { bus: Bus }): Promise<void> {
  const organizations = createClient(options.bus, identityV1.Organizations);
  const config = { dialect: 'runnerpilot' } as const;
  const params = { type: 'object', properties: { org_id: { type: 'string', minLength: 1, maxLength: 64 } }, required: ['org_id'] } as const;

  app.post<{ Body: { organization: OrganizationBody } }>('/onboarding', {
    config,
    onRequest: app.authenticate,
    schema: { body: { type: 'object', required: ['organization'], properties: { organization: { ...organizationBody, required: ['name', 'short_name'] } } } },
  }, async (request) => {
    const { name, short_name: shortName, type } = request.body.organization;
    const { organization } = await organizations.onboard({ caller: callerOf(request), name, shortName, type: type ?? 'personal' });
    return { organization: pilotOrganization(organization!) };
  });

  app.post<{ Body: OrganizationBody }>('/org', {
    config,
    onRequest: app.authenticate,
    schema: { body: { ...organizationBody, required: ['name', 'short_name'] } },
  }, async (request) => {
    const { organization } = await organizations.create({ caller: callerOf(request), name: request.body.name, shortName: request.body.short_name, type: request.body.type ?? 'organization' });
    return pilotOrganization(organization!);
  });

  app.get('/org', { config, onRequest: app.authenticate }, async (request) => {
    const { organizations: found } = await organizations.list({ caller: callerOf(request) });
    return found.map(pilotOrganization);
  });

  app.get<{ Params: { org_id: string } }>('/org/:org_id', { config, onRequest: app.authenticate, schema: { params } }, async (request) => {
    const { organization } = await organizations.get({ caller: callerOf(request), organizationRef: request.params.org_id });
    return pilotOrganization(organization!);
  });

  app.put<{ Params: { org_id: string }; Body: Partial<OrganizationBody> }>('/org/:org_id', {
    config,
    onRequest: app.authenticate,
    schema: { params, body: { ...organizationBody, minProperties: 1, additionalProperties: false } },
  }, async (request) => {
    const { organization } = await organizations.update({
      caller: callerOf(request),
      organizationRef: request.params.org_id,
      name: request.body.name,
      shortName: request.body.short_name,
      type: request.body.type,
    });
    return pilotOrganization(organization!);
  });
}
