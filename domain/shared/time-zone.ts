/**
 * Wall-clock time in an IANA time zone, through Node's own time-zone database (`Intl`), daylight saving included:
 * what a promotion's days and hours are read in, and the local midnight at which points expire.
 */

export interface WallClock {
  year: number;
  /** 1–12. */
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** `SUN` … `SAT`. */
  weekday: string;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** One formatter per zone, kept: building one costs far more than formatting with it. */
function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      weekday: 'short',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** Whether Node's time-zone database knows `timeZone`. */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/**
 * The canonical name of a time zone Node knows (`america/new_york` and `EST5EDT` are accepted by Intl and are
 * `America/New_York`; `utc` is `UTC`): what is stored and compared, so one zone typed two ways is one zone.
 */
export function canonicalTimeZone(timeZone: string): string {
  return new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone;
}

/** The wall-clock date and time of an instant in a time zone. */
export function wallClock(at: Date, timeZone: string): WallClock {
  const parts = Object.fromEntries(formatterFor(timeZone).formatToParts(at).map((p) => [p.type, p.value]));
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
    weekday: String(parts.weekday).toUpperCase().slice(0, 3),
  };
}

/** How far the zone's wall clock is ahead of UTC at an instant, in milliseconds (whole seconds). */
function offsetAt(instant: number, timeZone: string): number {
  const c = wallClock(new Date(instant), timeZone);
  const seconds = instant - (((instant % 1000) + 1000) % 1000);
  return Date.UTC(c.year, c.month - 1, c.day, c.hour, c.minute, c.second) - seconds;
}

/**
 * The instant at which the zone's wall clock reads 00:00 on a date (`month` 1–12; a month past 12 rolls into the
 * next year, as `Date.UTC` does). Where daylight saving skips that midnight (Havana on 1 April 2012: 23:59:59, then
 * 01:00), the first instant after it, when the clock jumps; where it is passed twice, the first time.
 */
export function localMidnight(year: number, month: number, day: number, timeZone: string): Date {
  const wall = Date.UTC(year, month - 1, day);
  // The zone's offsets on either side of the date: no zone changes its offset twice within a day.
  const before = offsetAt(wall - 86_400_000, timeZone);
  const after = offsetAt(wall + 86_400_000, timeZone);
  const candidates = [wall - before, wall - after].filter((t) => t + offsetAt(t, timeZone) === wall);
  if (candidates.length) return new Date(Math.min(...candidates));
  // Skipped: the offset changes between `wall - after` (still the old offset) and `wall - before` (the new one).
  let lo = wall - after;
  let hi = wall - before;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (offsetAt(mid, timeZone) === before) lo = mid;
    else hi = mid;
  }
  return new Date(hi);
}
