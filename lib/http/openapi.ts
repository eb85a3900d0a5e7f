/**
 * OpenAPI 3.1 from the routes' own zod schemas: each route file exports descriptors that point at the
 * schemas it validates with, so the document cannot drift from the validation. OpenAPI 3.1 uses JSON Schema
 * 2020-12, which is what `z.toJSONSchema()` emits; schemas are rendered in their input form (what a client
 * sends), so transforms such as lower-casing do not get in the way.
 */
import { z } from 'zod';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface ResponseDoc {
  description: string;
  schema?: z.ZodType;
  /** Default `application/json` when `schema` is set. */
  contentType?: string;
}

/** The OpenAPI description of one route. */
export interface RouteDoc {
  method: HttpMethod;
  /** Express-style path (`/devices/:id/metrics`) relative to `prefix`. */
  path: string;
  summary: string;
  tags?: string[];
  body?: z.ZodType;
  /** Request body media type (default `application/json`). */
  bodyContentType?: string;
  /** Further accepted request bodies, by media type (a route taking multipart or JSON). */
  altBodies?: Record<string, z.ZodType>;
  query?: z.ZodObject;
  /**
   * Path parameters: the zod object the route validates them with, or descriptions by name. Without a
   * schema, the group's `params` schema (else a plain string) is used.
   */
  params?: z.ZodObject | Record<string, string>;
  /** Keyed by status code (`'200'`, `'404'`, ...). */
  responses: Record<string, ResponseDoc>;
  /** Marks routes that need `Authorization: Bearer` (the management API). */
  auth?: boolean;
}

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
}

/** RFC 9457 body every error response carries. */
export const problemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

export function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const out = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', reused: 'inline' }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

function requestContent(route: RouteDoc): Record<string, unknown> {
  const content: Record<string, unknown> = { [route.bodyContentType ?? 'application/json']: { schema: jsonSchema(route.body!) } };
  for (const [type, schema] of Object.entries(route.altBodies ?? {})) content[type] = { schema: jsonSchema(schema) };
  return content;
}

const toOpenApiPath = (p: string) => p.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

function operation(route: RouteDoc, groupParams: z.ZodObject | undefined): Record<string, unknown> {
  const parameters: Array<Record<string, unknown>> = [];
  const own = route.params instanceof z.ZodType ? route.params : undefined;
  const descriptions = route.params && !(route.params instanceof z.ZodType) ? route.params : {};
  const paramsSchema = own ?? groupParams;
  const pathProps = paramsSchema ? ((jsonSchema(paramsSchema) as { properties?: Record<string, unknown> }).properties ?? {}) : {};
  for (const m of route.path.matchAll(/:([A-Za-z0-9_]+)/g)) {
    const name = m[1]!;
    const description = descriptions[name];
    parameters.push({
      name,
      in: 'path',
      required: true,
      schema: pathProps[name] ?? { type: 'string' },
      ...(description ? { description } : {}),
    });
  }
  if (route.query) {
    const q = jsonSchema(route.query) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
    for (const [name, schema] of Object.entries(q.properties ?? {})) {
      parameters.push({ name, in: 'query', required: q.required?.includes(name) ?? false, schema });
    }
  }
  const responses: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(route.responses)) {
    responses[status] = {
      description: r.description,
      ...(r.schema
        ? { content: { [r.contentType ?? 'application/json']: { schema: jsonSchema(r.schema) } } }
        : r.contentType
          ? { content: { [r.contentType]: {} } }
          : {}),
    };
  }
  // Every route can answer with a problem; list the generic ones once per operation.
  responses.default ??= {
    description: 'Problem (RFC 9457); 503 with Retry-After while the database is unavailable',
    content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
  };
  return {
    summary: route.summary,
    ...(route.tags ? { tags: route.tags } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(route.body ? { requestBody: { required: true, content: requestContent(route) } } : {}),
    ...(route.auth ? { security: [{ bearer: [] }] } : {}),
    responses,
  };
}

export interface OpenApiGroup {
  /** Mount prefix (`/api/v1`, or `''`). */
  prefix: string;
  routes: RouteDoc[];
  /** Path parameter schemas shared by the group's routes (`{ id: deviceId }`). */
  params?: z.ZodObject;
}

/** The whole document; `groups` lets a host combine routers mounted under different prefixes. */
export function buildOpenApi(info: OpenApiInfo, groups: OpenApiGroup[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const { prefix, routes, params } of groups) {
    for (const route of routes) {
      const p = toOpenApiPath(prefix + route.path);
      (paths[p] ??= {})[route.method] = operation(route, params);
    }
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    components: {
      schemas: { Problem: jsonSchema(problemSchema) },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'RELAY_ADMIN_TOKEN' } },
    },
  };
}

/** Descriptors of the operations endpoints of `mountOps`, for hosts to include. */
export const OPS_ROUTES: RouteDoc[] = [
  {
    method: 'get',
    path: '/health',
    summary: 'Service status',
    tags: ['ops'],
    responses: { '200': { description: 'OK', schema: z.object({ status: z.literal('ok'), service: z.string() }) } },
  },
  {
    method: 'get',
    path: '/health/live',
    summary: 'Liveness probe',
    tags: ['ops'],
    responses: { '200': { description: 'The process is up' } },
  },
  {
    method: 'get',
    path: '/health/ready',
    summary: 'Readiness probe (the database answers)',
    tags: ['ops'],
    responses: {
      '200': { description: 'Ready' },
      '503': { description: 'The database is unreachable', schema: problemSchema, contentType: 'application/problem+json' },
    },
  },
  {
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics',
    tags: ['ops'],
    responses: { '200': { description: 'Prometheus text format', contentType: 'text/plain' } },
  },
  {
    method: 'get',
    path: '/openapi.json',
    summary: 'This document',
    tags: ['ops'],
    responses: { '200': { description: 'OpenAPI 3.1 document' } },
  },
];
