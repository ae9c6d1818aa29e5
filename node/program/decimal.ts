/**
 * Exact decimal parsing, rounding and rendering for program values.
 *
 * Values are exact rationals num / den (den > 0) over bigints; no floating
 * point is involved anywhere, so a result string is a pure function of the
 * opened field elements. Rounding is round-half-to-even (IEEE 754
 * roundTiesToEven, "banker's rounding"): unbiased over many values.
 */

/** An exact rational number num / den with den > 0 (not necessarily reduced). */
export interface Rational {
  readonly num: bigint;
  readonly den: bigint;
}

/** Plain decimal syntax accepted from data owners: optional sign, digits, optional fraction. No exponents. */
const DECIMAL = /^([+-]?)([0-9]+)(?:\.([0-9]+))?$/;
/** Integer syntax accepted from data owners. */
const INTEGER = /^[+-]?[0-9]+$/;
/** Longest numeric string accepted (far beyond any 128-bit value; bounds parsing work). */
export const MAX_NUMERIC_STRING_LENGTH = 400;

/** Parses "-12.5" into -125/10; undefined for anything else (exponents, spaces, empty). */
export function parseDecimal(text: string): Rational | undefined {
  if (text.length > MAX_NUMERIC_STRING_LENGTH) return undefined;
  const m = DECIMAL.exec(text);
  if (m === null) return undefined;
  const fraction = m[3] ?? "";
  const magnitude = BigInt(m[2]! + fraction);
  return { num: m[1] === "-" ? -magnitude : magnitude, den: 10n ** BigInt(fraction.length) };
}

/** Parses an integer string ("-42", "+7", "007"); undefined for anything else. */
export function parseInteger(text: string): bigint | undefined {
  if (text.length > MAX_NUMERIC_STRING_LENGTH || !INTEGER.test(text)) return undefined;
  return BigInt(text);
}

/** The exact value of a finite JS number as a rational with a power-of-two denominator. */
export function rationalFromNumber(x: number): Rational | undefined {
  if (!Number.isFinite(x)) return undefined;
  let den = 1n;
  // Doubling is exact in binary floating point; a finite double has at most 1074 fractional bits.
  while (!Number.isInteger(x)) {
    x *= 2;
    den *= 2n;
  }
  return { num: BigInt(x), den };
}

/** num / den rounded to the nearest integer, ties to even. den must be > 0. */
export function roundHalfEven(num: bigint, den: bigint): bigint {
  if (den <= 0n) throw new RangeError("roundHalfEven: denominator must be positive");
  // Floor division (BigInt division truncates toward zero).
  let q = num / den;
  let r = num % den;
  if (r < 0n) {
    q -= 1n;
    r += den;
  }
  const twice = 2n * r;
  if (twice > den || (twice === den && (q & 1n) === 1n)) q += 1n;
  return q;
}

function digitsOf(magnitude: bigint, decimals: number): string {
  const text = magnitude.toString().padStart(decimals + 1, "0");
  return decimals === 0 ? text : `${text.slice(0, -decimals)}.${text.slice(-decimals)}`;
}

/**
 * value / 2^frac as an exact decimal, trailing zeros removed ("1.5", "-3",
 * "0.0625"). Always exact: 2^-frac has exactly frac decimal digits.
 */
export function formatBinaryFixed(value: bigint, frac: number): string {
  if (frac === 0) return value.toString();
  const negative = value < 0n;
  const scaled = (negative ? -value : value) * 5n ** BigInt(frac); // value / 2^frac = value · 5^frac / 10^frac
  // digitsOf gives "i.ffff" (frac > 0): drop trailing zeros of the fraction, then a bare point.
  const text = digitsOf(scaled, frac).replace(/0+$/, "").replace(/\.$/, "");
  return negative ? `-${text}` : text;
}

/** num / den rounded half-to-even to exactly `decimals` digits after the point ("2.50", "-0.33", "7"). */
export function formatRounded(value: Rational, decimals: number): string {
  const scaled = roundHalfEven(value.num * 10n ** BigInt(decimals), value.den);
  const negative = scaled < 0n;
  const text = digitsOf(negative ? -scaled : scaled, decimals);
  return negative ? `-${text}` : text;
}

/** floor(sqrt(n)) for n >= 0 (Newton's method on bigints, exact). */
export function isqrt(n: bigint): bigint {
  if (n < 0n) throw new RangeError("isqrt: negative argument");
  if (n < 2n) return n;
  // Start above the root (2^ceil(bits/2) > sqrt(n)); the iteration then decreases monotonically to floor(sqrt(n)).
  let x = 1n << BigInt(Math.ceil(n.toString(2).length / 2));
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

/**
 * sqrt(num / den) rounded half-to-even to exactly `decimals` digits, for
 * num >= 0 and den > 0. Exact: with X = num · 10^(2·decimals) / den, the
 * result is s = floor(sqrt(X)) or s + 1, decided by comparing X with
 * (s + 1/2)^2 in integers (a tie happens only when X is exactly that square).
 */
export function formatSqrtRounded(value: Rational, decimals: number): string {
  if (value.den <= 0n || value.num < 0n) throw new RangeError("formatSqrtRounded: needs num >= 0 and den > 0");
  const scaledNum = value.num * 10n ** BigInt(2 * decimals);
  let s = isqrt(scaledNum / value.den); // floor(sqrt(X)) = isqrt(floor(X))
  // X vs (s + 1/2)^2  <=>  4·scaledNum vs den·(2s + 1)^2.
  const lhs = 4n * scaledNum;
  const rhs = value.den * (2n * s + 1n) ** 2n;
  if (lhs > rhs || (lhs === rhs && (s & 1n) === 1n)) s += 1n;
  return digitsOf(s, decimals);
}
