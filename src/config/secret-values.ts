/**
 * How a secret option's value becomes the strings a Redactor must hide: the whole value, the
 * password inside a URL, or each long enough header value. Pure functions of one value.
 */

/** Header values shorter than this are not treated as secrets: replacing a "2" would garble every number shown. */
export const MIN_HEADER_SECRET_CHARS = 4;

export function headerSecrets(headers: Record<string, string>): string[] {
  return Object.values(headers).filter((value) => value.length >= MIN_HEADER_SECRET_CHARS);
}

export function urlPassword(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const password = new URL(url).password;
    return password === '' ? undefined : decodeURIComponent(password);
  } catch {
    return undefined;
  }
}

/** Query parameters whose name says they carry a credential (`?api_key=...`, `?sig=...`). */
const SECRET_PARAM = /key|token|secret|sig|auth|pass|credential/i;

export const isCredentialParam = (name: string): boolean => SECRET_PARAM.test(name);

/**
 * A destination URL's password and credential-named query values: a receiver may echo the URL it
 * was called with. Other query values (`?format=json`) are not secrets and stay readable.
 */
export function urlSecrets(url: string | undefined): string[] {
  if (url === undefined) return [];
  try {
    const params = [...new URL(url).searchParams].filter(([name]) => isCredentialParam(name));
    const values = [urlPassword(url), ...params.map(([, value]) => value)];
    return values.filter((v): v is string => v !== undefined && v.length >= MIN_HEADER_SECRET_CHARS);
  } catch {
    return [];
  }
}
