/** The program summary's range cover: whole years, months, weeks and days that tile a range exactly, coarsest first. */
import test from 'ava';
import fc from 'fast-check';
import { rangeCover } from '../../projections/read/program.ts';

const d = (iso: string) => new Date(`${iso}T00:00:00Z`);
const DAY = 86_400_000;

/** The days a piece spans (its first day, then to the day before the next piece of its level would start). */
function daysOf(piece: { level: string; start: string }): string[] {
  const start = d(piece.start);
  const end =
    piece.level === 'day'
      ? new Date(start.getTime() + DAY)
      : piece.level === 'week'
        ? new Date(start.getTime() + 7 * DAY)
        : piece.level === 'month'
          ? new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1))
          : new Date(Date.UTC(start.getUTCFullYear() + 1, 0, 1));
  const days: string[] = [];
  for (let t = start.getTime(); t < end.getTime(); t += DAY) days.push(new Date(t).toISOString().slice(0, 10));
  return days;
}

test('a calendar year is one piece; 30 days take weeks in the middle and days at the edges', (t) => {
  t.deepEqual(rangeCover(d('2025-01-01'), d('2025-12-31')), [{ level: 'year', start: '2025-01-01' }]);
  // 2025-12-02 is a Tuesday: six days to Monday the 8th, three whole weeks, then the 29th to the 31st.
  t.deepEqual(
    rangeCover(d('2025-12-02'), d('2025-12-31')).map((p) => `${p.level} ${p.start}`),
    [
      'day 2025-12-02', 'day 2025-12-03', 'day 2025-12-04', 'day 2025-12-05', 'day 2025-12-06', 'day 2025-12-07',
      'week 2025-12-08', 'week 2025-12-15', 'week 2025-12-22',
      'day 2025-12-29', 'day 2025-12-30', 'day 2025-12-31',
    ],
  );
  // A quarter by weeks (Monday 29 September to Sunday 4 January): whole months inside, days at the edges.
  t.deepEqual(
    rangeCover(d('2025-09-29'), d('2026-01-04')).map((p) => `${p.level} ${p.start}`),
    ['day 2025-09-29', 'day 2025-09-30', 'month 2025-10-01', 'month 2025-11-01', 'month 2025-12-01', 'day 2026-01-01', 'day 2026-01-02', 'day 2026-01-03', 'day 2026-01-04'],
  );
  t.deepEqual(rangeCover(d('2025-03-02'), d('2025-03-01')), []);
});

test('any range is tiled exactly: every day once, in order, nothing outside it', (t) => {
  const base = Date.UTC(2023, 0, 1);
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1500 }), fc.integer({ min: 0, max: 800 }), (offset, length) => {
        const from = new Date(base + offset * DAY);
        const to = new Date(from.getTime() + length * DAY);
        const days = rangeCover(from, to).flatMap(daysOf);
        const expected = Array.from({ length: length + 1 }, (_, i) => new Date(from.getTime() + i * DAY).toISOString().slice(0, 10));
        return JSON.stringify(days) === JSON.stringify(expected);
      }),
    ),
  );
});
