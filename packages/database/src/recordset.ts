/** Name conversions, remembered: bulk statements convert every field of every row. */
function memoized(convert: (name: string) => string): (name: string) => string {
  const known = new Map<string, string>();
  return (name) => {
    let converted = known.get(name);
    if (converted === undefined) known.set(name, (converted = convert(name)));
    return converted;
  };
}

/** `createdAt` → `created_at`: a Prisma field name to its column. */
export const columnOf = memoized((field) => field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`));
/** `created_at` → `createdAt`: a column to its Prisma field name. */
export const fieldOf = memoized((column) => column.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase()));

/**
 * Rows with Prisma field names as the one JSON parameter of
 * `json_populate_recordset(NULL::<table>, $1::json)`: a single statement
 * inserts them all, without Prisma's query compilation on a hot path.
 */
export function recordsetJson(rows: readonly object[]): string {
  return JSON.stringify(rows.map((row) => {
    const record: Record<string, unknown> = {};
    for (const [field, value] of Object.entries(row)) record[columnOf(field)] = value;
    return record;
  }));
}
