// claimsOf reads the payload of a JWT without checking it: the server
// checks every request; the client only uses the claims to choose what to
// show (the staff flag) and whose row is "you".
export interface Claims {
  sub?: string;
  exp?: number;
  tenant?: string;
  staff?: boolean;
}

export function claimsOf(token: string): Claims {
  const part = token.split('.')[1];
  if (!part) return {};
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const json = decodeURIComponent(
      Array.from(atob(b64), (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''),
    );
    const v = JSON.parse(json) as unknown;
    return typeof v === 'object' && v !== null ? (v as Claims) : {};
  } catch {
    return {};
  }
}
