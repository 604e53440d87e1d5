/** Telling a typo from a name of one's own (`PROT` for `PORT`, `conect` for `connect`). */

/**
 * True when `a` and `b` are Damerau's one edit apart: one letter inserted, deleted or
 * substituted, or two neighbours swapped.
 */
export function withinOneEdit(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 1 || a === b) return false;
  let start = 0;
  while (start < a.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) endA--, endB--;
  const restA = a.slice(start, endA);
  const restB = b.slice(start, endB);
  if (restA.length <= 1 && restB.length <= 1) return true; // one changed, added or dropped
  return restA.length === 2 && restB.length === 2 && restA[0] === restB[1] &&
    restA[1] === restB[0];
}
