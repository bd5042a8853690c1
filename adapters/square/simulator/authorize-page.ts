/**
 * The simulator's consent page, Square's `GET /oauth2/authorize` in small: "Allow Tally to access Demo Bakery?"
 * with Allow and Deny. The form posts back to the same URL (its query kept), so a browser, or `curl -d decision=allow`
 * on the URL a redirect landed on, decides the same way.
 */

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

const STYLE = `body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;background:#f4f5f7}
main{max-width:28rem;margin:4rem auto;padding:1.5rem;background:#fff;border:1px solid #c9ccd1;border-radius:8px}
h1{font-size:1.3rem;margin:0 0 1rem}.note{color:#4a4a4a;font-size:.9rem}ul{padding-left:1.2rem}
.actions{display:flex;gap:.75rem;margin-top:1.25rem}button{font:inherit;padding:.5rem 1.2rem;border-radius:4px;border:1px solid #0b4fa6;cursor:pointer}
button[value=allow]{background:#0b4fa6;color:#fff}button[value=deny]{background:#fff;color:#0b4fa6}select{font:inherit;padding:.3rem}
.error{border-left:4px solid #a4161a;padding-left:.75rem;color:#a4161a}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escape(title)}</title><style>${STYLE}</style></head><body><main>${body}
<p class="note">Square simulator (development only): no Square account, no real money.</p></main></body></html>`;
}

const SCOPE_TEXT: Record<string, string> = {
  MERCHANT_PROFILE_READ: 'Read your business profile and locations',
  PAYMENTS_READ: 'Read your payments and refunds',
  CUSTOMERS_READ: 'Read your customers',
  ORDERS_READ: 'Read your orders',
};

export function consentPage(options: { appName: string; merchants: { id: string; name: string }[]; scopes: string[] }): string {
  const [first] = options.merchants;
  const who =
    options.merchants.length === 1 && first
      ? `<input type="hidden" name="merchant_id" value="${escape(first.id)}">`
      : `<p><label>Signed in as <select name="merchant_id">${options.merchants
          .map((m) => `<option value="${escape(m.id)}">${escape(m.name)} (${escape(m.id)})</option>`)
          .join('')}</select></label></p>`;
  const title = options.merchants.length === 1 && first ? `Allow ${options.appName} to access ${first.name}?` : `Allow ${options.appName} to access your business?`;
  return page(
    title,
    `<h1>${escape(title)}</h1><form method="post">${who}
<p>${escape(options.appName)} is asking to:</p><ul>${options.scopes.map((s) => `<li>${escape(SCOPE_TEXT[s] ?? s)}</li>`).join('')}</ul>
<div class="actions"><button type="submit" name="decision" value="allow">Allow</button><button type="submit" name="decision" value="deny">Deny</button></div></form>`,
  );
}

export function authorizeErrorPage(detail: string): string {
  return page('Authorization failed', `<h1>Authorization failed</h1><p class="error">${escape(detail)}</p>`);
}
