/**
 * The merchant's Square locations and the workspace's time zone (issue 19). Square keeps a time zone per
 * location (`Location.timezone`), none on the merchant: the workspace's is its main location's
 * (`Merchant.main_location_id`), else that of its first active location. A promotion limited to locations takes
 * theirs.
 */
import { SquareApiError, type SquareApi, type SquareLocation } from '../ports/square.ts';
import { SquareRequestFailed } from '../connections/errors.ts';
import { DomainError, InvalidFields } from '../shared/errors.ts';
import { isTimeZone } from '../shared/time-zone.ts';

export interface MerchantLocations {
  mainLocationId: string | null;
  /** IANA name; null when Square gives none Node knows. */
  timeZone: string | null;
  locations: SquareLocation[];
}

/** The merchant's locations as Square lists them now. A Square failure is a 502 saying which call failed. */
export async function merchantLocations(api: SquareApi): Promise<MerchantLocations> {
  try {
    const [merchant, locations] = await Promise.all([api.getMerchant(), api.listLocations()]);
    const main = locations.find((l) => l.id === merchant.mainLocationId) ?? locations.find((l) => l.status === 'ACTIVE');
    const timeZone = main?.timezone && isTimeZone(main.timezone) ? main.timezone : null;
    return { mainLocationId: merchant.mainLocationId, timeZone, locations };
  } catch (error) {
    if (error instanceof SquareApiError) throw new SquareRequestFailed(`Square did not list the merchant's locations (${error.operation}: ${error.code}); retry in a moment`, error.code);
    throw error;
  }
}

/** The workspace's time zone, or a 422 saying why a promotion cannot be scheduled without one. */
export function workspaceTimeZone(found: MerchantLocations): string {
  if (found.timeZone) return found.timeZone;
  throw new DomainError('UNPROCESSABLE', "Square gives no time zone for the merchant's main location: set the location's time zone in the Square Dashboard, then schedule the promotion again");
}

/**
 * The time zone a promotion's dates, days and hours are read in. Limited to locations (`locationIds`): theirs, which
 * must be one (a 422 naming the zones otherwise: schedule one promotion per time zone); else the workspace's (the
 * main location's). An id Square does not list for the merchant is the decider's 400, checked here first.
 */
export function promotionTimeZone(found: MerchantLocations, locationIds: readonly string[] | undefined): string {
  if (!locationIds) return workspaceTimeZone(found);
  const foreign = foreignLocations('locationIds', locationIds, found.locations.map((l) => l.id));
  if (foreign) throw foreign;
  const chosen = found.locations.filter((l) => locationIds.includes(l.id));
  const unknown = chosen.filter((l) => !l.timezone || !isTimeZone(l.timezone));
  if (unknown.length) {
    throw new DomainError('UNPROCESSABLE', `Square gives no time zone for location(s) ${unknown.map((l) => l.id).join(', ')}: set the location's time zone in the Square Dashboard, then schedule the promotion again`);
  }
  const zones = [...new Set(chosen.map((l) => l.timezone ?? ''))];
  if (zones.length > 1) {
    const byZone = zones.map((zone) => `${zone} (${chosen.filter((l) => l.timezone === zone).map((l) => l.id).join(', ')})`).join(', ');
    throw new DomainError('UNPROCESSABLE', `locationIds are in ${zones.length} time zones: ${byZone}. A promotion's days and hours are read in one time zone: schedule one promotion per time zone`);
  }
  return zones[0] ?? workspaceTimeZone(found);
}

/** Location ids that are not the merchant's, as a 400 naming each field. */
export function foreignLocations(field: string, locationIds: readonly string[] | undefined, merchantLocationIds: readonly string[]): InvalidFields | null {
  const issues = (locationIds ?? []).flatMap((id, i) =>
    merchantLocationIds.includes(id) ? [] : [{ path: `${field}.${i}`, message: `${id} is not one of the merchant's Square locations (${merchantLocationIds.join(', ') || 'none listed'})` }],
  );
  if (!issues.length) return null;
  return new InvalidFields(issues);
}
