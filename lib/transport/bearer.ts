/** `Authorization: Bearer <token68>` (RFC 6750 section 2.1); the scheme is case-insensitive (RFC 7235). */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/** The token of a Bearer header; undefined when there is no header, null when it is malformed. */
export function bearerToken(header: string | undefined): string | null | undefined {
  if (header === undefined) return undefined;
  return BEARER.exec(header)?.[1] ?? null;
}
