/**
 * `npm run square` prints amounts in their currency's major units, by its exponent (cli/money.ts): a zero-decimal
 * currency's minor units are whole yen, not hundredths.
 */
import test from 'ava';
import { formatMinor } from '../../cli/money.ts';

test('an amount is written with as many decimals as its currency has', (t) => {
  t.is(formatMinor(1099, 'USD'), '10.99 USD');
  t.is(formatMinor(1099, 'JPY'), '1099 JPY', 'yen have no minor unit: ¥1099, not 10.99');
  t.is(formatMinor(1099, 'KWD'), '1.099 KWD', 'three decimals');
  // ISO 4217's exponent where Node's Intl says 0.
  t.is(formatMinor(12345, 'HUF'), '123.45 HUF');
  t.is(formatMinor(12345, 'IQD'), '12.345 IQD');
  t.is(formatMinor(5, 'EUR'), '0.05 EUR');
  t.is(formatMinor(0, 'USD'), '0.00 USD');
  t.is(formatMinor(-250, 'GBP'), '-2.50 GBP');
  t.is(formatMinor(9_007_199_254_740_993n, 'USD'), '90071992547409.93 USD', 'exact beyond 2^53');
});
