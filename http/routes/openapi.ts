/**
 * `GET /openapi.json`: an OpenAPI 3.1 document generated from the route table, so it cannot drift from what is
 * mounted: every operation, who may call it, how it authenticates, and the JSON Schemas of its path and query
 * parameters, its body and its answers (zod's `z.toJSONSchema`; request schemas as the caller writes them).
 */
import { z } from 'zod';
import { errorAnswer } from '../schemas.ts';
import { route, successStatuses, takesIdempotencyKey, type RouteSpec } from './table.ts';

const ACCESS_TEXT: Record<RouteSpec['access'], string> = {
  public: 'No bearer token (the route checks its own credentials: webhook signature or OAuth state).',
  cron: 'Header X-Cron-Secret equal to CRON_SECRET.',
  self: 'Any authenticated caller, registered or not.',
  user: 'An approved user, acting on their own data.',
  tenant: "An approved merchant (client) on its own tenant; administrators add ?tenantId=.",
  admin: 'An approved administrator.',
};

type JsonSchema = Record<string, unknown>;

/** JSON Schema of what crosses the wire: a request as sent (`input`), an answer as received (`input` too: before any transform). */
function jsonSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

/**
 * The object schema within a schema: itself, or the object of a wrapper (`.nullable()`, `.catch()`: an `anyOf` of it
 * and null), whose properties are the parameters all the same.
 */
function objectIn(schema: JsonSchema): JsonSchema | undefined {
  if (schema.properties) return schema;
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    for (const member of (schema[key] ?? []) as JsonSchema[]) {
      const found = objectIn(member);
      if (found) return found;
    }
  }
  return undefined;
}

/** One OpenAPI parameter per property of an object schema (path, query or header). */
function parameters(schema: z.ZodType | undefined, where: 'path' | 'query' | 'header'): JsonSchema[] {
  if (!schema) return [];
  const object = objectIn(jsonSchema(schema)) ?? {};
  const properties = (object.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((object.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => ({ name, in: where, required: where === 'path' || required.has(name), schema: property }));
}

/** The tenant an administrator acts on, on a `tenant` route (http/access.ts); a merchant's is their own. */
const ADMIN_TENANT = {
  name: 'tenantId',
  in: 'query',
  required: false,
  description: 'Administrators only, and required of them: the workspace (tenant) acted on. A merchant acts on their own.',
  schema: { type: 'string' },
};

/** The query parameters of a route: its declared ones, and an administrator's `tenantId` on a tenant route. */
function queryParameters(route: RouteSpec): JsonSchema[] {
  const declared = parameters(route.query, 'query');
  return route.access === 'tenant' && !declared.some((p) => p.name === 'tenantId') ? [...declared, ADMIN_TENANT] : declared;
}

function answers(route: RouteSpec): Record<string, unknown> {
  const errors = { description: 'An error: `{ "error": { "code", "message" } }`; 4xx messages say what to fix.', content: { 'application/json': { schema: jsonSchema(errorAnswer) } } };
  const success: Record<string, unknown> = {};
  for (const status of successStatuses(route)) {
    success[status] =
      route.answers === 'redirect'
        ? { description: 'A redirect (Location header).', headers: { Location: { schema: { type: 'string' } } } }
        : route.answers === 'event-stream'
          ? { description: 'Server-sent events; the data of each event is the schema below.', content: { 'text/event-stream': { itemSchema: jsonSchema(route.response) } } }
          : route.answers === 'csv'
            ? { description: 'A CSV file (RFC 4180), streamed.', content: { 'text/csv': { schema: jsonSchema(route.response) } } }
            : { description: 'The answer.', content: { 'application/json': { schema: jsonSchema(route.response) } } };
  }
  return { ...success, default: errors };
}

/** A body schema with `idempotencyKey` left out of every `required` (of the object, or of each member of a union). */
function keyOptional(schema: JsonSchema): JsonSchema {
  const out: JsonSchema = { ...schema };
  if (Array.isArray(schema.required)) out.required = schema.required.filter((name) => name !== 'idempotencyKey');
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    if (Array.isArray(schema[key])) out[key] = (schema[key] as JsonSchema[]).map(keyOptional);
  }
  return out;
}

/**
 * The body and header of a route whose body takes `idempotencyKey`: the `Idempotency-Key` header may carry it
 * instead (http/routes/table.ts, `withIdempotencyHeader`), so the body's field is optional in the document, and
 * the header is declared. Other routes: their body as it is, and no header.
 */
function idempotency(route: RouteSpec): { body: JsonSchema | undefined; header: JsonSchema[] } {
  if (!route.body) return { body: undefined, header: [] };
  const body = jsonSchema(route.body);
  if (!takesIdempotencyKey(route.body)) return { body, header: [] };
  const field = ((objectIn(body)?.properties ?? {}) as Record<string, JsonSchema>).idempotencyKey ?? { type: 'string' };
  const description =
    "The body's `idempotencyKey`, as a header: one of them is enough (required where the body's is, unless sent here); both, and different, is a 400.";
  return { body: keyOptional(body), header: [{ name: 'Idempotency-Key', in: 'header', required: false, description, schema: field }] };
}

export function openApiDocument(routes: readonly RouteSpec[], info: { version: string; serverUrl: string }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z]+)/g, '{$1}');
    const pathNames = [...route.path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]!);
    const declared = parameters(route.params, 'path');
    // Every path parameter is listed, declared or not (a route that reads none still has it in its path).
    const pathParameters = pathNames.map((name) => declared.find((p) => p.name === name) ?? { name, in: 'path', required: true, schema: { type: 'string' } });
    const keyed = idempotency(route);
    const security = route.access === 'public' ? [] : route.access === 'cron' ? [{ cronSecret: [] }] : [{ bearer: [] }];
    (paths[path] ??= {})[route.method] = {
      summary: route.summary,
      description: ACCESS_TEXT[route.access],
      'x-access': route.access,
      parameters: [...pathParameters, ...queryParameters(route), ...parameters(route.headers, 'header'), ...keyed.header],
      ...(keyed.body ? { requestBody: { required: true, content: { 'application/json': { schema: keyed.body } } } } : {}),
      security,
      responses: answers(route),
    };
  }
  return {
    openapi: '3.1.0' as const,
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

/** The route serving the document of `routes()` (itself included), generated once on first request. */
export function openApiRoute(routes: () => readonly RouteSpec[], info: { version: string; serverUrl: string }): RouteSpec {
  let document: ReturnType<typeof openApiDocument> | undefined;
  return route({
    method: 'get',
    path: '/openapi.json',
    access: 'public',
    summary: 'This document: every operation with its access level and the JSON Schemas of its parameters, body and answers.',
    response: z.object({ openapi: z.literal('3.1.0'), info: z.object({ title: z.string(), version: z.string() }).loose(), paths: z.record(z.string(), z.record(z.string(), z.unknown())) }).loose(),
    handler: () => ({ status: 200, body: (document ??= openApiDocument(routes(), info)) }),
  });
}
