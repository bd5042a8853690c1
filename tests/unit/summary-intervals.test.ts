/**
 * The program summary's intervals at the far ends of the dates it takes (years 0001–9999): `Date.UTC` reads the years
 * 0–99 as 1900–1999, so months of the first century came out empty or in the 1900s.
 */
import test from 'ava';
import { intervalEnd, intervalStarts } from '../../projections/read/program.ts';

const day = (text: string) => new Date(`${text}T00:00:00.000Z`);
const text = (d: Date) => d.toISOString().slice(0, 10);

test('months of the first century are of their own years', (t) => {
  t.deepEqual(intervalStarts(day('0050-01-01'), day('0050-03-31'), 'month').map(text), ['0050-01-01', '0050-02-01', '0050-03-01']);
  t.is(text(intervalEnd(day('0001-01-20'), 'month')), '0001-01-31');
  t.is(text(intervalEnd(day('0099-12-05'), 'month')), '0099-12-31');
});

test('months of now, and of the last year taken, are as before', (t) => {
  t.deepEqual(intervalStarts(day('2026-11-15'), day('2027-01-02'), 'month').map(text), ['2026-11-01', '2026-12-01', '2027-01-01']);
  t.is(text(intervalEnd(day('2028-02-10'), 'month')), '2028-02-29');
  t.is(text(intervalEnd(day('9999-12-01'), 'month')), '9999-12-31');
});
