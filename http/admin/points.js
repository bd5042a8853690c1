// A customer's points: their wallet at each merchant (balance, what they can spend now, what expires soon), and one
// wallet's history and the rewards its points afford. It calls only the caller's own routes (`/api/v1/me/…`).
import { api, append, cell, current, fmtNumber, fmtTime, guarded, h, loaded, show, table } from './ui.js';
import { balanceChart, catalogTable, ledgerTable } from './wallet.js';

const figures = (w) =>
  h(
    'dl',
    { class: 'cards' },
    h('div', {}, h('dt', {}, 'Points'), h('dd', { 'data-testid': 'balance' }, fmtNumber(w.balance))),
    h('div', {}, h('dt', {}, 'Available now'), h('dd', {}, fmtNumber(w.available))),
    w.locked ? h('div', {}, h('dt', {}, 'Held for your rewards'), h('dd', {}, fmtNumber(w.locked))) : null,
    w.expiringSoon.points ? h('div', {}, h('dt', {}, 'Expiring soon'), h('dd', {}, `${fmtNumber(w.expiringSoon.points)} on ${fmtTime(w.expiringSoon.at)}`)) : null,
  );

export function pointsView(rest, _params, token) {
  if (rest[0]) return walletPoints(rest[0], token);
  const body = h('div', { 'aria-busy': 'true' });
  show(h('section', {}, h('h1', {}, 'Your points'), body), 'Your points');
  (async () => {
    const [wallets, me] = await Promise.all([loaded(body, token, () => api('GET', '/api/v1/me/wallets')), guarded(() => api('GET', '/api/v1/me'))]);
    if (!wallets) return;
    // Only a verified phone matches purchases: one added and not verified earns nothing yet, whatever the page says.
    const unverifiedPhone = me?.phone && !me.phoneVerified ? h('p', { class: 'hint', 'data-testid': 'verify-phone' }, `Your phone ${me.phone} is not verified yet: purchases made with it earn points once it is.`) : null;
    if (wallets.length === 0) {
      const how = me?.phone && me.phoneVerified ? 'the email address or phone number of this account' : 'the email address of this account';
      body.append(h('p', { class: 'empty' }, `No points yet. Pay at a shop that uses Tally, with ${how}, and your points appear here.`), unverifiedPhone ?? '');
      return;
    }
    if (unverifiedPhone) body.append(unverifiedPhone);
    body.append(
      ...wallets.map((w) =>
        h(
          'article',
          { class: 'wallet-card', 'aria-label': `Points at ${w.businessName ?? 'a merchant'}` },
          h('h2', {}, w.businessName ?? 'A merchant'),
          figures(w),
          h('p', {}, h('a', { href: `#/points/${encodeURIComponent(w.walletId)}` }, `History and rewards at ${w.businessName ?? 'this merchant'}`)),
        ),
      ),
    );
  })();
}

async function walletPoints(walletId, token) {
  const body = h('div', { 'aria-busy': 'true' });
  const heading = h('h1', {}, 'Your points');
  show(h('section', {}, h('p', {}, h('a', { href: '#/points' }, 'All your points')), heading, body), 'Your points');
  const id = encodeURIComponent(walletId);
  const [wallets, rewards, ledger] = await Promise.all([
    guarded(() => api('GET', '/api/v1/me/wallets')),
    guarded(() => api('GET', `/api/v1/me/wallets/${id}/rewards`)),
    guarded(() => api('GET', `/api/v1/me/wallets/${id}/ledger?limit=100`)),
  ]);
  if (!current(token)) return;
  body.setAttribute('aria-busy', 'false');
  // Wallet ids are uuids, answered in lower case whatever case the address has.
  const wallet = wallets?.find((w) => w.walletId === walletId.toLowerCase());
  if (wallets && !wallet) {
    append(body, [h('p', { role: 'alert' }, 'No wallet of yours has this id: choose one under "All your points".')]);
    return;
  }
  if (!wallet || !rewards || !ledger) return;
  heading.textContent = `Your points at ${wallet.businessName ?? 'this merchant'}`;
  const available = rewards.available;
  append(body, [
    figures(wallet),
    h('h2', {}, 'Rewards'),
    catalogTable(rewards, 'Rewards you can ask for at the counter', 'This merchant offers no reward yet.', 'For you', (r) =>
      r.affordable ? 'You have enough points: ask for it' : `${fmtNumber(r.points - available)} more points`,
    ),
    rewards.issued.some((i) => i.status === 'issued')
      ? table(
          'Rewards waiting for you',
          ['Reward', 'Expires'],
          rewards.issued.filter((i) => i.status === 'issued').map((i) => h('tr', {}, cell('Reward', i.name), cell('Expires', h('time', { datetime: i.expiresAt }, fmtTime(i.expiresAt)), 'time'))),
        )
      : null,
    h('h2', {}, 'Over time'),
    balanceChart(ledger.items, !ledger.nextCursor),
    h('h2', {}, 'History'),
    ledgerTable(ledger, (cursor) => guarded(() => api('GET', `/api/v1/me/wallets/${id}/ledger?limit=100&cursor=${encodeURIComponent(cursor)}`))),
  ]);
}
