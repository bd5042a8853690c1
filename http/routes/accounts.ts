/** Users, approval, workspaces and reward rules. */
import type pg from 'pg';
import type { Context } from 'koa';
import { z } from 'zod';
import type { EventMetadata, EventStore } from '../../domain/ports/event-store.ts';
import type { AccountsService, TokenIdentity } from '../../domain/users/service.ts';
import type { PhoneVerificationService } from '../../domain/users/phone-verification.ts';
import type { RewardRulesService } from '../../domain/rewards/service.ts';
import { rewardRuleSchema } from '../../domain/rewards/rule.ts';
import { phoneRegion } from '../../domain/identity/normalise.ts';
import { loadState } from '../../domain/shared/command-handler.ts';
import { workspaceDecider, workspaceStream } from '../../domain/workspaces/workspace.ts';
import { listRewardRules, searchUsers } from '../../projections/read/accounts.ts';
import { HttpError, parseRequest } from '../errors.ts';
import type { Caller } from '../access.ts';
import type { RouteSpec } from './table.ts';

export interface AccountRoutesDependencies {
  accounts: AccountsService;
  phoneVerification: PhoneVerificationService;
  rules: RewardRulesService;
  store: EventStore;
  pool: pg.Pool;
}

const id = z.string().min(1).max(200).regex(/^[A-Za-z0-9._:@|-]+$/, 'must be an id (letters, digits, . _ : @ | -)');

/** The region a phone without `+` is read in: an ISO 3166 alpha-2 code (GB, JP, …); the US when not given. */
const country = z
  .string()
  .refine((c) => phoneRegion(c) !== undefined && /^[A-Za-z]{2}$/.test(c), 'country must be an ISO 3166 alpha-2 code such as GB (the region of a phone number written without +)')
  .transform((c) => c.toUpperCase());

const registerBody = z
  .object({
    role: z.enum(['client', 'consumer'], { error: "role must be 'client' or 'consumer'" }),
    businessName: z.string().trim().min(1).max(200).optional(),
    phone: z.string().min(3).max(40).optional(),
    country: country.optional(),
  })
  .strict();

const meBody = z.object({ phone: z.string().min(3).max(40).nullable(), country: country.optional() }).strict();
const verifyPhoneBody = z.object({ code: z.string().regex(/^\d{6}$/, 'code must be the 6 digits sent by SMS') }).strict();

const identityOf = (c: Caller): TokenIdentity => ({
  userId: c.userId,
  email: c.email,
  emailVerified: c.emailVerified,
  phone: c.phone,
  phoneVerified: c.phoneVerified,
  verifiedBy: c.verifiedBy,
});

const meView = (user: Awaited<ReturnType<AccountsService['view']>>) => ({
  id: user.id,
  email: user.email,
  emailVerified: user.emailVerified,
  phone: user.phone,
  phoneVerified: user.phoneVerified,
  role: user.role,
  status: user.status,
  tenantId: user.tenantId,
  businessName: user.businessName,
});
const suspendBody = z.object({ reason: z.string().trim().min(1).max(500).optional() }).strict();
const searchQuery = z.object({ q: z.string().trim().min(1, 'q is required: part of an email, id or business name').max(200) });

export function caller(ctx: Context): Caller {
  const c = ctx.state.caller;
  if (!c) throw new Error('route without authentication reached a handler that needs a caller');
  return c;
}

export function tenantOf(ctx: Context): string {
  const tenantId = ctx.state.tenantId;
  if (!tenantId) throw new Error('tenant route without a resolved tenant');
  return tenantId;
}

/**
 * A request's correlation id: `request:<X-Request-Id>`. Namespaced, because the client chooses its request id:
 * `X-Request-Id: webhook:ev-1` must not join that webhook's trail (`webhook:…`, `poll:…` are ours).
 */
export const requestCorrelation = (ctx: Context) => `request:${ctx.state.requestId}`;

/** Event metadata for a request: who, and the request as correlation. */
export function metadataFor(ctx: Context): EventMetadata {
  const c = ctx.state.caller;
  const actor = c ? `${c.user?.role === 'admin' ? 'admin' : 'user'}:${c.userId}` : 'anonymous';
  return { correlationId: requestCorrelation(ctx), causationId: requestCorrelation(ctx), actor };
}

export const body = <T extends z.ZodType>(schema: T, ctx: Context): z.infer<T> => parseRequest(schema, ctx.request.body ?? {});
export const params = <T extends z.ZodType>(schema: T, ctx: Context): z.infer<T> => parseRequest(schema, ctx.params);
export const query = <T extends z.ZodType>(schema: T, ctx: Context): z.infer<T> => parseRequest(schema, ctx.query);

export function accountRoutes(deps: AccountRoutesDependencies): RouteSpec[] {
  const { accounts, rules } = deps;
  return [
    {
      method: 'post',
      path: '/api/v1/me/register',
      access: 'self',
      summary: 'Register the caller as a client (merchant) or consumer; repeated calls return the same user.',
      async handler(ctx) {
        const input = body(registerBody, ctx);
        const c = caller(ctx);
        const result = await accounts.register(identityOf(c), input, metadataFor(ctx));
        // A security signal for operators: someone presented an admin email that does not make them an admin.
        if (result.adminRefused) ctx.log.warn({ userId: c.userId, reason: result.adminRefused }, result.adminRefused);
        ctx.status = result.created ? 201 : 200;
        ctx.body = { user: result.user, position: result.position ?? null };
      },
    },
    {
      method: 'get',
      path: '/api/v1/me',
      access: 'self',
      summary: "The caller's account: id, email, phone (each with whether it is verified), role, status, tenantId.",
      async handler(ctx) {
        const c = caller(ctx);
        if (!c.user) throw new HttpError('NOT_FOUND', 'You are not registered yet: POST /api/v1/me/register');
        ctx.body = meView(await accounts.view(c.user));
      },
    },
    {
      method: 'patch',
      path: '/api/v1/me',
      access: 'self',
      summary: "Change the caller's phone number (null removes it); it stays unverified until proven.",
      async handler(ctx) {
        const c = caller(ctx);
        if (!c.user) throw new HttpError('NOT_FOUND', 'You are not registered yet: POST /api/v1/me/register');
        const input = body(meBody, ctx);
        const result = await accounts.changePhone(identityOf(c), input.phone, metadataFor(ctx), input.country);
        ctx.body = { user: result.user, position: result.position ?? null };
      },
    },
    {
      method: 'post',
      path: '/api/v1/me/phone/verification',
      access: 'self',
      summary: "Send a 6-digit code by SMS to the caller's phone (valid 10 minutes; at most 5 codes an hour).",
      async handler(ctx) {
        const result = await deps.phoneVerification.send(caller(ctx).userId);
        ctx.status = 202;
        ctx.body = result;
      },
    },
    {
      method: 'post',
      path: '/api/v1/me/phone/verify',
      access: 'self',
      summary: 'Prove the phone with the code sent by SMS: `{ "code": "123456" }` (at most 5 wrong codes per code).',
      async handler(ctx) {
        const c = caller(ctx);
        const { code } = body(verifyPhoneBody, ctx);
        const result = await deps.phoneVerification.verify(c.userId, code, metadataFor(ctx));
        const user = await accounts.load(c.userId);
        if (user.status === 'unregistered') throw new HttpError('NOT_FOUND', 'You are not registered yet: POST /api/v1/me/register');
        ctx.body = { user: await accounts.view(user), position: result.position ?? null };
      },
    },
    {
      method: 'get',
      path: '/api/v1/admin/users/search',
      access: 'admin',
      summary: 'Find users by part of their email, id or business name (case-insensitive).',
      async handler(ctx) {
        const { q } = query(searchQuery, ctx);
        ctx.body = await searchUsers(deps.pool, q);
      },
    },
    {
      method: 'patch',
      path: '/api/v1/admin/users/:userId/approve',
      access: 'admin',
      summary: "Approve a pending user; a client's merchant workspace is provisioned. Idempotent.",
      async handler(ctx) {
        const { userId } = params(z.object({ userId: id }), ctx);
        const result = await accounts.approve(caller(ctx).userId, userId, metadataFor(ctx));
        ctx.body = { user: result.user, position: result.position ?? null };
      },
    },
    {
      method: 'patch',
      path: '/api/v1/admin/users/:userId/suspend',
      access: 'admin',
      summary: 'Suspend a user (optional reason).',
      async handler(ctx) {
        const { userId } = params(z.object({ userId: id }), ctx);
        const input = body(suspendBody, ctx);
        const result = await accounts.suspend(caller(ctx).userId, userId, input.reason ?? null, metadataFor(ctx));
        ctx.body = { user: result.user, position: result.position ?? null };
      },
    },
    {
      method: 'patch',
      path: '/api/v1/admin/users/:userId/reinstate',
      access: 'admin',
      summary: 'Reinstate a suspended user to the status they had.',
      async handler(ctx) {
        const { userId } = params(z.object({ userId: id }), ctx);
        const result = await accounts.reinstate(caller(ctx).userId, userId, metadataFor(ctx));
        ctx.body = { user: result.user, position: result.position ?? null };
      },
    },
    {
      method: 'delete',
      path: '/api/v1/admin/users/:userId/personal-data',
      access: 'admin',
      summary: "Erase a person's email and phone; their history stays, holding only keyed hashes.",
      async handler(ctx) {
        const { userId } = params(z.object({ userId: id }), ctx);
        const result = await accounts.erasePersonalData(caller(ctx).userId, userId, metadataFor(ctx));
        ctx.body = { erased: true, position: result.position ?? null };
      },
    },
    {
      method: 'get',
      path: '/api/v1/client/workspace',
      access: 'tenant',
      summary: "The merchant's workspace (admins: ?tenantId=).",
      async handler(ctx) {
        const { state } = await loadState(deps.store, workspaceStream(tenantOf(ctx)), workspaceDecider);
        if (state.status === 'none') throw new HttpError('NOT_FOUND', 'Workspace not found');
        ctx.body = { tenantId: state.tenantId, businessName: state.businessName, ownerUserId: state.ownerUserId, provisionedAt: state.provisionedAt };
      },
    },
    {
      method: 'get',
      path: '/api/v1/client/reward-rules',
      access: 'tenant',
      summary: "The tenant's reward rule versions, newest first, the active one marked.",
      async handler(ctx) {
        ctx.body = await listRewardRules(deps.pool, tenantOf(ctx));
      },
    },
    {
      method: 'post',
      path: '/api/v1/client/reward-rules',
      access: 'tenant',
      summary: 'Create the next rule version (inactive): spend {points, per, basis, minimumSpend?} or visit {points, minimumSpend?}.',
      async handler(ctx) {
        const rule = body(rewardRuleSchema, ctx);
        const created = await rules.create(tenantOf(ctx), rule, caller(ctx).userId, metadataFor(ctx));
        ctx.status = 201;
        ctx.body = { ...created, position: created.position ?? null };
      },
    },
    {
      method: 'post',
      path: '/api/v1/client/reward-rules/retire',
      access: 'tenant',
      summary: 'Retire every rule version so far: none stays active or can be activated again (needed to reconnect Square in another currency).',
      async handler(ctx) {
        const result = await rules.retire(tenantOf(ctx), caller(ctx).userId, metadataFor(ctx));
        ctx.body = { ...result, position: result.position ?? null };
      },
    },
    {
      method: 'post',
      path: '/api/v1/client/reward-rules/:ruleId/activate',
      access: 'tenant',
      summary: 'Make a rule version the single active one.',
      async handler(ctx) {
        const { ruleId } = params(z.object({ ruleId: id }), ctx);
        const result = await rules.activate(tenantOf(ctx), ruleId, caller(ctx).userId, metadataFor(ctx));
        ctx.body = { ...result, position: result.position ?? null };
      },
    },
  ];
}
