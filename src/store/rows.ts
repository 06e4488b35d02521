/** Parses a JSON column; null stays null. */
export const json = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));

/** "?, ?, ?" for an IN list of n values. */
export const placeholders = (n: number): string => Array.from({ length: n }, () => "?").join(", ");
