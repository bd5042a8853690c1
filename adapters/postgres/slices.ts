/**
 * Runs `statement` (one slice of a long change, its own short transaction) again until a slice changes fewer than
 * `slice` rows, or `stopping` is aborted (shutdown): the slice under way finishes, no other starts, and the next run
 * goes on from there. Answers how many rows the slices changed.
 */
export async function inSlices(slice: number, statement: () => Promise<{ rowCount: number | null }>, stopping?: AbortSignal): Promise<number> {
  let changed = 0;
  while (!stopping?.aborted) {
    const rows = (await statement()).rowCount ?? 0;
    changed += rows;
    if (rows < slice) break;
  }
  return changed;
}
