/**
 * Who may call what, decided in one place. Every route declares its access level; these checks authenticate,
 * load the caller's account (the in-memory caller view), and resolve the tenant a request acts on, for the router's
 * middleware and for the routes served ahead of Koa alike (http/direct-route.ts).
 * Handlers read `ctx.state.caller` and `ctx.state.tenantId` and never decide access themselves.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Context, Middleware, Next } from 'koa';
import { SUSPENDED_ADMIN, type UserState } from '../domain/users/events.ts';
import type { Principal } from './auth.ts';
import { HttpError } from './errors.ts';
import type { FailureLimiter } from './rate-limit.ts';

/**
 * - `public`: anyone (health, webhooks verify their own signature, OAuth callback checks its state).
 * - `cron`: the X-Cron-Secret header.
 * - `self`: any authenticated caller, registered or not, pending or suspended (the /me endpoints).
 * - `user`: an approved user of any role, acting on their own data.
 * - `tenant`: an approved client acting on its own tenant, or an admin naming one with `?tenantId=`.
 * - `admin`: an approved admin.
 */
export type Access = 'public' | 'cron' | 'self' | 'user' | 'tenant' | 'admin';

export type RegisteredUser = Exclude<UserState, { status: 'unregistered' }>;

export interface Caller extends Principal {
  user: RegisteredUser | undefined;
}

declare module 'koa' {
  interface DefaultState {
    caller?: Caller;
    /** The tenant a `tenant` route acts on. */
    tenantId?: string;
    /**
     * Runs this request's access checks again (token, account status, role): a long-lived answer (the live event
     * tail) calls it now and then and ends when it throws, so a suspension or an expired token ends it too.
     */
    recheckAccess?: () => Promise<void>;
  }
}

export interface AccessDependencies {
  verifyToken(token: string): Promise<Principal>;
  loadUser(userId: string): Promise<UserState>;
  /** Whether a workspace (tenant) was provisioned: an admin's ?tenantId= must name one. */
  workspaceExists(tenantId: string): Promise<boolean>;
  cronSecret: string;
  /** Counts authentication failures per source address; past the limit a failure is 429 instead of 401. */
  failures: FailureLimiter;
}

function secretsEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  // Compare equal-length buffers only; the length check leaks nothing useful about the secret's content.
  return a.length === b.length && timingSafeEqual(a, b);
}

const TENANT_ID = /^[A-Za-z0-9_-]{1,100}$/;

/**
 * What the access checks read of a request and write into it. A Koa context is one; http/direct-route.ts builds
 * one for the routes it serves, so both paths run these same checks.
 */
export interface GuardedRequest {
  readonly ip: string;
  get(field: string): string;
  readonly query: Record<string, unknown>;
  state: { caller?: Caller | undefined; tenantId?: string | undefined };
  logWith(bindings: Record<string, unknown>): void;
}

/**
 * The checks of an access level, on one request: resolves with `state.caller` (and `state.tenantId` for `tenant`)
 * set, or throws the error to answer (401, 403, 429, the admin's missing or unknown tenant).
 */
export type AccessCheck = (access: Access, request: GuardedRequest) => Promise<void>;

/**
 * Refuses a credential with 401, counting the failure against its source (429 past the limit): only failures are
 * counted and refused, a valid credential always passes. Not a closure made per request: under tsx (the benchmarks,
 * `npm start`) naming one cost 1.2–1.5 µs per request in bench/reads.ts profiles.
 */
function refuse(failures: FailureLimiter, source: string, kind: 'cron' | 'bearer', message: string): never {
  failures.fail(source, kind);
  throw new HttpError('UNAUTHENTICATED', message);
}

export function accessCheck(deps: AccessDependencies): AccessCheck {
  return async (access, request) => {
    if (access === 'public') return;
    const source = request.ip;
    const kind = access === 'cron' ? 'cron' : 'bearer';
    if (access === 'cron') {
      if (!secretsEqual(request.get('x-cron-secret'), deps.cronSecret)) refuse(deps.failures, source, kind, 'A valid X-Cron-Secret header is required');
      return;
    }

    const header = request.get('authorization');
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) refuse(deps.failures, source, kind, header ? 'The Authorization header must be "Bearer <token>"' : 'Authorization: Bearer <token> is required');
    let principal: Principal;
    try {
      principal = await deps.verifyToken(match![1]!);
    } catch (error) {
      if (error instanceof HttpError && error.code === 'UNAUTHENTICATED') deps.failures.fail(source, kind);
      throw error;
    }
    const state = await deps.loadUser(principal.userId);
    const user = state.status === 'unregistered' ? undefined : state;
    request.state.caller = { ...principal, user };
    request.logWith({ userId: principal.userId });
    if (access === 'self') return;

    if (!user) throw new HttpError('USER_NOT_REGISTERED', 'Register first: POST /api/v1/me/register');
    if (user.status === 'pending') throw new HttpError('USER_PENDING_APPROVAL', 'Your account is waiting for an administrator to approve it');
    if (user.status === 'suspended') throw new HttpError('USER_SUSPENDED', user.role === 'admin' ? SUSPENDED_ADMIN : 'Your account is suspended');
    if (access === 'user') return;

    if (access === 'admin') {
      if (user.role !== 'admin') throw new HttpError('FORBIDDEN', 'This endpoint is for administrators');
      return;
    }
    // access === 'tenant'
    if (user.role === 'client') {
      if (!user.tenantId) throw new HttpError('FORBIDDEN', 'Your merchant workspace is not provisioned yet');
      request.state.tenantId = user.tenantId;
      return;
    }
    if (user.role === 'admin') {
      const tenantId = adminTenant(request.query.tenantId);
      // Nothing may be created in a tenant that does not exist (a rule, a connection).
      if (!(await deps.workspaceExists(tenantId))) throw new HttpError('NOT_FOUND', `No workspace has tenantId ${tenantId}`);
      request.state.tenantId = tenantId;
      return;
    }
    throw new HttpError('FORBIDDEN', 'This endpoint is for merchants (clients)');
  };
}

/** The tenant an administrator names (`?tenantId=`), once and as an id: each other case says what is wrong with it. */
function adminTenant(given: unknown): string {
  if (given === undefined || given === '') throw new HttpError('VALIDATION_FAILED', 'Administrators must name the tenant: add ?tenantId=<tenant id>');
  if (typeof given !== 'string') throw new HttpError('VALIDATION_FAILED', 'tenantId must be given once');
  if (!TENANT_ID.test(given)) throw new HttpError('VALIDATION_FAILED', 'tenantId must be a tenant id (letters, digits, _ and -, at most 100 characters)');
  return given;
}

/** The access checks as the router's middleware: a public route goes straight on, with no promise of its own. */
export function accessControl(check: AccessCheck) {
  return (access: Access): Middleware =>
    access === 'public' ? (_ctx, next) => next() : async (ctx: Context, next: Next): Promise<void> => {
      await check(access, ctx);
      ctx.state.recheckAccess = () => check(access, ctx);
      return next();
    };
}
