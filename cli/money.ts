/**
 * An amount in minor units written in its currency's major units, by the currency's ISO 4217 exponent (Intl's
 * fraction digits, corrected where they differ: Square's minor units follow ISO 4217): 1099 USD is "10.99 USD", 1099 JPY "1099 JPY", 1099 KWD
 * "1.099 KWD". Exact: digits are placed, not divided. A currency Intl does not know is taken with 2 decimals.
 */
export function formatMinor(amount: number | bigint, currency: string): string {
  const exponent = fractionDigits(currency);
  const digits = (amount < 0 ? -BigInt(amount) : BigInt(amount)).toString().padStart(exponent + 1, '0');
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = exponent ? `.${digits.slice(digits.length - exponent)}` : '';
  return `${amount < 0 ? '-' : ''}${whole}${fraction} ${currency}`;
}

/**
 * Where Node's Intl data (CLDR's digits for cash) is not ISO 4217's minor unit, which Square's amounts follow:
 * HUF, IDR and LBP have 2 decimals in ISO 4217, IQD 3 (Intl says 0 for all four).
 */
const ISO_4217_EXPONENTS: Readonly<Record<string, number>> = { HUF: 2, IDR: 2, LBP: 2, IQD: 3 };

function fractionDigits(currency: string): number {
  const iso = ISO_4217_EXPONENTS[currency.toUpperCase()];
  if (iso !== undefined) return iso;
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}
