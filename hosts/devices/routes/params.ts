/** The device API's common request inputs, validated once. */
import type { Request } from 'express';
import { parseOr422 } from '../../../lib/http/problem.js';
import { deviceParams, listQuery } from '../schemas.js';

/** The validated `{id}` path parameter (422 naming `id` when it is not a device id). */
export const deviceIdOf = (req: Request): string => parseOr422(deviceParams, req.params, 'path').id;

/** `?limit=` (1..1000, default 100). */
export const limitOf = (req: Request): number => parseOr422(listQuery, req.query, 'query').limit;
