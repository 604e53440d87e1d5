/** The admin page's totals across processes, apart from the page so they can be tested. */

// A group with members in two processes is in both rows' counts, and a row names its 20 largest
// groups only (session groups never): across processes the exact total is not known, so the page
// shows what it is at least (the most of one process, or the groups named) and at most (the sum).
/**
 * @param {{ groups: number }[]} list the processes' rows
 * @param {number} named the distinct groups the rows name
 * @param {number} summed the rows' group counts added up
 * @returns {string}
 */
export function groupsTotal(list, named, summed) {
  const least = Math.max(named, ...list.map((row) => row.groups));
  return least >= summed ? String(summed) : `${least}–${summed}`;
}
