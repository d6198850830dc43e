// Errors of the API, as the user should read them.
//
// Every error answer of the API is {"error": {"code", "message", "details"}}
// where details maps a body field, query parameter or header to what is
// wrong with it. ApiError carries that; formErrors turns it into messages
// to show next to a form's fields, and one line for the rest.

/** The error shape of every API answer that is not a success. */
export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, string> };
}

/** An error answer of the API, or a failure to reach it (status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, string>;
  /** Seconds to wait before trying again (429), when the server said. */
  readonly retryAfter?: number;
  /** The X-Request-ID of the answer, to quote when reporting a problem. */
  readonly requestId?: string;

  constructor(
    status: number,
    code: string,
    message: string,
    details: Record<string, string> = {},
    extra: { retryAfter?: number; requestId?: string } = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = extra.retryAfter;
    this.requestId = extra.requestId;
  }
}

/** The code the API uses for a status, for answers that are not its JSON (a proxy's page). */
const codeOfStatus: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'too_large',
  422: 'invalid',
  429: 'rate_limited',
  500: 'internal',
  502: 'unavailable',
  503: 'unavailable',
  504: 'unavailable',
};

function isErrorBody(v: unknown): v is ErrorBody {
  if (typeof v !== 'object' || v === null) return false;
  const e = (v as { error?: unknown }).error;
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string';
}

/**
 * apiErrorFrom builds the ApiError of an answer: from its JSON error body
 * when it has one, else from its status alone.
 */
export function apiErrorFrom(
  status: number,
  body: unknown,
  headers?: { get(name: string): string | null },
): ApiError {
  const retry = Number(headers?.get('Retry-After') ?? '');
  const extra = {
    retryAfter: Number.isFinite(retry) && retry > 0 ? retry : undefined,
    requestId: headers?.get('X-Request-ID') ?? undefined,
  };
  if (isErrorBody(body)) {
    const { code, message, details } = body.error;
    const clean: Record<string, string> = {};
    if (details && typeof details === 'object') {
      for (const [k, v] of Object.entries(details)) if (typeof v === 'string') clean[k] = v;
    }
    return new ApiError(status, code, typeof message === 'string' && message ? message : `Error ${status}`, clean, extra);
  }
  return new ApiError(status, codeOfStatus[status] ?? 'error', `The server answered ${status}.`, {}, extra);
}

/** networkError is the ApiError of a request that never got an answer. */
export function networkError(): ApiError {
  return new ApiError(0, 'network', 'Could not reach the server. Check your connection and try again.');
}

/** isStaleWrite reports a 409 for a stale If-Match: someone saved in between. */
export function isStaleWrite(err: unknown): boolean {
  return err instanceof ApiError && err.status === 409 && 'If-Match' in err.details;
}

/**
 * isTenantSuspended reports the answer of a suspended workspace: every
 * route of a tenant (sign-in too) answers 403 tenant_suspended until the
 * platform resumes it.
 */
export function isTenantSuspended(err: unknown): boolean {
  return err instanceof ApiError && err.code === 'tenant_suspended';
}

/** What a user of a suspended workspace reads, whatever they were doing. */
export const suspendedMessage =
  'This workspace is suspended: nobody can sign in or use it until it is resumed. Its data is kept. Contact your administrator.';

function capitalize(s: string): string {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

/** fieldLabel turns a field name (is_staff, If-Match) into words. */
export function fieldLabel(name: string): string {
  return capitalize(name.replace(/[_-]+/g, ' ').toLowerCase());
}

function sentence(s: string): string {
  const t = s.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/**
 * describe returns one plain line for an error, whatever it is: what the
 * server said, with what to do about it where that helps.
 */
export function describe(err: unknown): string {
  if (!(err instanceof ApiError)) {
    return err instanceof Error && err.message ? sentence(capitalize(err.message)) : 'Something went wrong.';
  }
  if (isStaleWrite(err)) return 'Someone else saved this product first.';
  if (isTenantSuspended(err)) return suspendedMessage;
  switch (err.code) {
    case 'network':
      return err.message;
    case 'rate_limited':
      return sentence(capitalize(err.message)) + (err.retryAfter ? ` Try again in ${err.retryAfter} s.` : '');
    case 'unavailable':
      return `${sentence(capitalize(err.message))} Try again in a moment.`;
    case 'too_large':
      return 'That is too large to send.';
    case 'internal':
      return `Something went wrong on the server${err.requestId ? ` (request ${err.requestId})` : ''}. Try again.`;
    default:
      return sentence(capitalize(err.message));
  }
}

/** What a form shows: a message per field, and one line for the rest. */
export interface FormErrors {
  /** The line above or below the form; undefined when every detail found its field. */
  form?: string;
  /** A message per field of the form, e.g. { sku: 'SKU is already taken.' }. */
  fields: Record<string, string>;
}

/**
 * formErrors maps an error onto a form: each detail whose key is one of the
 * form's fields goes next to that field ("Price must be a non-negative
 * decimal..."); every other detail (a query parameter, a header) and the
 * error itself make the form-level line. labels names the fields as the
 * form shows them (sku -> "SKU"); others are spelled from their key.
 */
export function formErrors(
  err: unknown,
  fields: readonly string[] = [],
  labels: Record<string, string> = {},
): FormErrors {
  if (err == null) return { fields: {} };
  if (!(err instanceof ApiError) || isStaleWrite(err)) return { form: describe(err), fields: {} };
  const out: Record<string, string> = {};
  const rest: string[] = [];
  for (const [key, msg] of Object.entries(err.details)) {
    const label = labels[key] ?? fieldLabel(key);
    const text = sentence(`${label} ${msg}`);
    if (fields.includes(key)) out[key] = text;
    else rest.push(text);
  }
  if (rest.length > 0) return { form: [describe(err), ...rest].join(' '), fields: out };
  if (Object.keys(out).length > 0) {
    // Everything is said next to the fields; for a conflict (a taken
    // SKU or email) that is the whole story.
    return { form: err.status === 422 ? 'Check the highlighted fields.' : undefined, fields: out };
  }
  return { form: describe(err), fields: out };
}
