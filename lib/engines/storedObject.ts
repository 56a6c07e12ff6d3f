/**
 * The first step of reading an engine's crash-recovery state back from the
 * store (issue 9): the text is bounded and must be a JSON object. The store
 * may have been edited or written by an older release, so the caller then
 * checks every field it uses against its grammar.
 */
export function readStoredObject(text: string, maxChars: number): Record<string, unknown> | undefined {
  if (text.length > maxChars) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
