/** Users, approval and workspaces (reward rules: `reward-rules.ts`). */
import type pg from 'pg';
import type { Context } from 'koa';
import { z } from 'zod';
import type { EventStore, Position } from '../../domain/ports/event-store.ts';
import type { AccountsService, TokenIdentity } from '../../domain/users/service.ts';
import type { PhoneVerificationService } from '../../domain/users/phone-verification.ts';
import { phoneRegion } from '../../domain/identity/normalise.ts';
import { loadState } from '../../domain/shared/command-handler.ts';
import { workspaceDecider, workspaceStream } from '../../domain/workspaces/workspace.ts';
import { SEARCH_LIMIT, searchUsers, userSearchView, userView } from '../../projections/read/accounts.ts';
import { HttpError } from '../errors.ts';
import type { Caller } from '../access.ts';
import { caller, metadataFor, tenantOf } from '../request.ts';
import { position, timestamp, userId } from '../schemas.ts';
import { listRoute, route, type Answer, type RouteSpec } from './table.ts';

export interface AccountRoutesDependencies {
  accounts: AccountsService;
  phoneVerification: PhoneVerificationService;
  store: EventStore;
  pool: pg.Pool;
}

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

const mePhone = 'phone is required: a phone number such as +12125551234 (3 to 40 characters), or null to remove it';
const meBody = z.object({ phone: z.string({ error: mePhone }).min(3, mePhone).max(40, mePhone).nullable(), country: country.optional() }).strict();
const verifyPhoneBody = z.object({ code: z.string().regex(/^\d{6}$/, 'code must be the 6 digits sent by SMS') }).strict();

const identityOf = (c: Caller): TokenIdentity => ({
  userId: c.userId,
  email: c.email,
  emailVerified: c.emailVerified,
  phone: c.phone,
  phoneVerified: c.phoneVerified,
  verifiedBy: c.verifiedBy,
});

const meView = userView.omit({ registeredAt: true });
const userWrite = z.object({ user: userView, position });

/** How every write about a user answers: the user as it now stands and the write's position. */
const userWritten = (result: { user: z.input<typeof userView>; position?: Position | undefined }, status = 200): Answer<z.input<typeof userWrite>> => ({
  status,
  body: { user: result.user, position: result.position ?? null },
});
const userParams = z.object({ userId: userId('userId') });

/** A change to the caller's own account needs one: 404 until registered, whatever the body says. */
const registered = ({ ctx }: { ctx: Context }) => {
  if (!caller(ctx).user) throw new HttpError('NOT_FOUND', 'You are not registered yet: POST /api/v1/me/register');
};

const meOf = (user: Awaited<ReturnType<AccountsService['view']>>): z.input<typeof meView> => ({
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
const Q_REQUIRED = 'q is required: part of an email, id or business name';
// The max has its own message: the schema's error callback would otherwise answer a long q with Q_REQUIRED (found in review, 2026-12-08).
const searchQuery = z.object({
  q: z
    .string({ error: (issue) => (Array.isArray(issue.input) ? 'q must be given once' : Q_REQUIRED) })
    .trim()
    .min(1, Q_REQUIRED)
    .max(200, 'q must be at most 200 characters'),
});

// Over 80 lines because it is the route table of a context: one short declaration per route.
export function accountRoutes(deps: AccountRoutesDependencies): RouteSpec[] {
  const { accounts } = deps;
  /** `PATCH /api/v1/admin/users/:userId/<action>`: an administrator's change of a user's status that takes nothing but the user. */
  const statusChange = (action: 'approve' | 'reinstate', summary: string) =>
    route({
      method: 'patch',
      path: `/api/v1/admin/users/:userId/${action}`,
      access: 'admin',
      summary,
      params: userParams,
      response: userWrite,
      async handler({ params, ctx }) {
        return userWritten(await accounts[action](caller(ctx).userId, params.userId, metadataFor(ctx)));
      },
    });
  return [
    route({
      method: 'post',
      path: '/api/v1/me/register',
      access: 'self',
      summary: 'Register the caller as a client (merchant) or consumer; repeated calls return the same user.',
      body: registerBody,
      response: userWrite,
      statuses: [200, 201],
      async handler({ body, ctx }) {
        const c = caller(ctx);
        const result = await accounts.register(identityOf(c), body, metadataFor(ctx));
        // A security signal for operators: someone presented an admin email that does not make them an admin.
        if (result.adminRefused) ctx.log.warn({ userId: c.userId, reason: result.adminRefused }, result.adminRefused);
        return userWritten(result, result.created ? 201 : 200);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/me',
      access: 'self',
      direct: true,
      summary: "The caller's account: id, email, phone (each with whether it is verified), role, status, tenantId.",
      response: meView,
      async handler({ ctx }) {
        const { user } = caller(ctx);
        if (!user) throw new HttpError('NOT_FOUND', 'You are not registered yet: POST /api/v1/me/register');
        return { status: 200, body: meOf(await accounts.view(user)) };
      },
    }),
    route({
      method: 'patch',
      path: '/api/v1/me',
      access: 'self',
      summary: "Change the caller's phone number (null removes it); it stays unverified until proven.",
      exists: registered,
      body: meBody,
      response: userWrite,
      async handler({ body, ctx }) {
        const result = await accounts.changePhone(identityOf(caller(ctx)), body.phone, metadataFor(ctx), body.country);
        return userWritten(result);
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/me/phone/verification',
      access: 'self',
      summary: "Send a 6-digit code by SMS to the caller's phone (valid 10 minutes; at most 5 codes an hour).",
      response: z.object({ sentTo: z.string(), expiresAt: timestamp }),
      statuses: [202],
      async handler({ ctx }) {
        return { status: 202, body: await deps.phoneVerification.send(caller(ctx).userId) };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/me/phone/verify',
      access: 'self',
      summary: 'Prove the phone with the code sent by SMS: `{ "code": "123456" }` (at most 5 wrong codes per code).',
      body: verifyPhoneBody,
      response: userWrite,
      async handler({ body, ctx }) {
        const c = caller(ctx);
        const result = await deps.phoneVerification.verify(c.userId, body.code, metadataFor(ctx));
        const user = await accounts.load(c.userId);
        if (user.status === 'unregistered') throw new HttpError('NOT_FOUND', 'You are not registered yet: POST /api/v1/me/register');
        return { status: 200, body: { user: await accounts.view(user), position: result.position ?? null } };
      },
    }),
    listRoute({
      path: '/api/v1/admin/users/search',
      access: 'admin',
      summary: `Find users by part of their email, id or business name (case-insensitive): the newest ${SEARCH_LIMIT}, and \`more\`: true when more matched.`,
      query: searchQuery,
      response: userSearchView,
      read: (query) => searchUsers(deps.pool, query.q),
    }),
    statusChange('approve', "Approve a pending user; a client's merchant workspace is provisioned. Idempotent."),
    route({
      method: 'patch',
      path: '/api/v1/admin/users/:userId/suspend',
      access: 'admin',
      summary: 'Suspend a user (optional reason).',
      params: userParams,
      body: suspendBody,
      response: userWrite,
      async handler({ params, body, ctx }) {
        const result = await accounts.suspend(caller(ctx).userId, params.userId, body.reason ?? null, metadataFor(ctx));
        return userWritten(result);
      },
    }),
    statusChange('reinstate', 'Reinstate a suspended user to the status they had.'),
    route({
      method: 'delete',
      path: '/api/v1/admin/users/:userId/personal-data',
      access: 'admin',
      summary: "Erase a person's email and phone; their history stays, holding only keyed hashes.",
      params: userParams,
      response: z.object({ erased: z.literal(true), position }),
      async handler({ params, ctx }) {
        const result = await accounts.erasePersonalData(caller(ctx).userId, params.userId, metadataFor(ctx));
        return { status: 200, body: { erased: true as const, position: result.position ?? null } };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/client/workspace',
      access: 'tenant',
      summary: "The merchant's workspace (admins: ?tenantId=).",
      response: z.object({ tenantId: z.string(), businessName: z.string().nullable(), ownerUserId: z.string(), provisionedAt: timestamp }),
      async handler({ ctx }) {
        const { state } = await loadState(deps.store, workspaceStream(tenantOf(ctx)), workspaceDecider);
        if (state.status === 'none') throw new HttpError('NOT_FOUND', 'Workspace not found');
        return { status: 200, body: { tenantId: state.tenantId, businessName: state.businessName, ownerUserId: state.ownerUserId, provisionedAt: state.provisionedAt } };
      },
    }),
  ];
}
