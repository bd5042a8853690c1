/**
 * `/pos`: where the OAuth callback sends the browser when Tally has no front end of its own (development with
 * FRONTEND_URL unset: it defaults to Tally's own address). One small page, in the admin console's style: connected,
 * or the error and what to do next. Rendered on the server from the query (no script), under the console's CSP.
 */
import Router from '@koa/router';
import { z } from 'zod';
import type { ConnectFailureReason } from '../../domain/connections/errors.ts';
import { ADMIN_CONSOLE_CSP } from './admin-console.ts';

/** What each callback error means to the merchant, and what to do about it. */
const WHAT_TO_DO: Record<ConnectFailureReason, { title: string; todo: string; link?: { href: string; text: string } }> = {
  access_denied: { title: 'You chose Deny on Square’s page.', todo: 'Nothing was connected. To connect, start again from the connect button and choose Allow.' },
  invalid_state: {
    title: 'The connect link was not valid any more (used already, older than 10 minutes, or for another session).',
    todo: 'Start again from the connect button; finish within 10 minutes, in the same browser.',
  },
  token_exchange_failed: {
    title: 'Square did not give Tally access.',
    todo: 'An administrator should check the Square settings: GET /api/v1/client/debug/square (runbook 1 in the README).',
  },
  merchant_already_connected: {
    title: 'This Square business is already connected to another Tally workspace.',
    todo: 'Sign in to Square as the business that belongs to this workspace, or ask an administrator to disconnect the other one.',
  },
  currency_mismatch: {
    title: 'This Square business counts in another currency than this workspace, and the workspace has reward rules.',
    todo: 'Rule amounts are in the workspace currency: retire the rules first (“Retire all rules” in your console’s Reward rules view, linked below), connect again, then create rules in the new currency.',
    link: { href: '/merchant#/rules', text: 'Open your Reward rules' },
  },
  configuration_missing: {
    title: 'Tally is not configured for Square.',
    todo: 'Set SQUARE_APP_ID and SQUARE_APP_SECRET (or, in development, unset SQUARE_APP_ID to use the built-in simulator) and restart.',
  },
};

const query = z.object({
  connected: z.literal('square').optional(),
  error: z.enum(Object.keys(WHAT_TO_DO) as [ConnectFailureReason, ...ConnectFailureReason[]]).optional(),
});

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

function page(body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Tally: Square connection</title><link rel="stylesheet" href="/admin/app.css"></head>
<body><header class="top"><p class="brand">Tally</p></header>
<main id="main">${body}<p><a href="/merchant">Open your Tally console</a>: your customers, their points, and your loyalty program.</p></main></body></html>`;
}

export function posPageRouter(): Router {
  const router = new Router();
  router.get('/pos', (ctx) => {
    const parsed = query.safeParse(ctx.query);
    let body: string;
    if (!parsed.success || (!parsed.data.connected && !parsed.data.error)) {
      ctx.status = 400;
      body = `<h1>Square connection</h1><p class="status error" role="alert">This page expects ?connected=square or ?error=&lt;reason&gt;, as the OAuth callback sends.</p>`;
    } else if (parsed.data.error) {
      const help = WHAT_TO_DO[parsed.data.error];
      body = `<h1>Square was not connected</h1><p class="status error" role="alert">${escape(help.title)}</p><p>${escape(help.todo)}</p>${help.link ? `<p><a href="${escape(help.link.href)}">${escape(help.link.text)}</a></p>` : ''}`;
    } else {
      body = `<h1>Square is connected</h1><p class="status" role="status">Payments at this business now earn points. New payments arrive by webhook; the poll catches up on any missed.</p>`;
    }
    ctx.set('Content-Type', 'text/html; charset=utf-8');
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Content-Security-Policy', ADMIN_CONSOLE_CSP);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.body = page(body);
  });
  return router;
}
