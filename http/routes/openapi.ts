/**
 * `GET /openapi.json`: an OpenAPI 3.1 listing generated from the route table, so it cannot drift from what
 * is mounted. Request and response schemas are described in README.md; this document lists every operation,
 * who may call it, and how it authenticates.
 */
import Router from '@koa/router';
import type { RouteSpec } from './table.ts';

const ACCESS_TEXT: Record<RouteSpec['access'], string> = {
  public: 'No bearer token (the route checks its own credentials: webhook signature or OAuth state).',
  cron: 'Header X-Cron-Secret equal to CRON_SECRET.',
  self: 'Any authenticated caller, registered or not.',
  user: 'An approved user, acting on their own data.',
  tenant: "An approved merchant (client) on its own tenant; administrators add ?tenantId=.",
  admin: 'An approved administrator.',
};

export function openApiDocument(routes: readonly RouteSpec[], info: { version: string; serverUrl: string }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z]+)/g, '{$1}');
    const parameters = [...route.path.matchAll(/:([A-Za-z]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const security = route.access === 'public' ? [] : route.access === 'cron' ? [{ cronSecret: [] }] : [{ bearer: [] }];
    (paths[path] ??= {})[route.method] = {
      summary: route.summary,
      description: ACCESS_TEXT[route.access],
      'x-access': route.access,
      parameters,
      security,
      responses: {
        default: {
          description: 'JSON. Errors are { "error": { "code", "message" } }; 4xx messages say what to fix.',
          content: { 'application/json': {} },
        },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Tally API', version: info.version, description: 'Loyalty points for merchants on Square. See README.md.' },
    servers: [{ url: info.serverUrl }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        cronSecret: { type: 'apiKey', in: 'header', name: 'X-Cron-Secret' },
      },
    },
    paths,
  };
}

export function openApiRouter(routes: readonly RouteSpec[], info: { version: string; serverUrl: string }): Router {
  const document = openApiDocument(routes, info);
  const router = new Router();
  router.get('/openapi.json', (ctx) => {
    ctx.body = document;
  });
  return router;
}
