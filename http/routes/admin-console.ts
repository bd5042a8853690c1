/**
 * The console: a static page (http/admin/, no build step) served at `/admin`, at `/merchant` for merchants and at
 * `/points` for customers (the same page: what it shows follows the role of the token it is given). It signs in with the same bearer tokens as
 * the API and calls only the public API, so this router serves files and nothing else.
 */
import { readFileSync } from 'node:fs';
import Router from '@koa/router';
import type { Context } from 'koa';

const DIRECTORY = new URL('../admin/', import.meta.url);

/** No inline script or style anywhere in the page, so the policy can be strict. */
export const ADMIN_CONSOLE_CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const FILES = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'ui.js': 'text/javascript; charset=utf-8',
  'wallet.js': 'text/javascript; charset=utf-8',
  'program.js': 'text/javascript; charset=utf-8',
  'settings.js': 'text/javascript; charset=utf-8',
  'points.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
} as const;

type FileName = keyof typeof FILES;

export function adminConsoleRouter(): Router {
  // Read once at startup: the files are tiny and change only with a deploy.
  const contents = new Map<FileName, Buffer>(
    (Object.keys(FILES) as FileName[]).map((name) => [name, readFileSync(new URL(name, DIRECTORY))]),
  );
  const serve = (name: FileName) => (ctx: Context) => {
    ctx.set('Content-Type', FILES[name]);
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('Content-Security-Policy', ADMIN_CONSOLE_CSP);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.body = contents.get(name);
  };
  const router = new Router();
  for (const page of ['/admin', '/admin/', '/merchant', '/merchant/', '/points', '/points/']) router.get(page, serve('index.html'));
  for (const name of Object.keys(FILES) as FileName[]) if (name !== 'index.html') router.get(`/admin/${name}`, serve(name));
  return router;
}
