// The platform's tenant list and the tenant writes its pages share.
//
// The list's search, state filter, sort and page size live in the page's
// URL (?q=&state=&ordering=&limit=), so that a reload, the back button or a
// shared link shows the same list; the cursor of the page shown does not
// (it is sealed for one list and kept by the pager). What the URL holds is
// read leniently: a value the API would refuse is taken as its default.
import type { QueryClient } from '@tanstack/react-query';
import type { ApiClient } from '../api/client';
import type { Page, Tenant, TenantOrderKey, TenantOrdering, TenantState } from '../api/types';

export const tenantStates: readonly TenantState[] = ['provisioning', 'active', 'suspended', 'deleting'];
export const tenantOrderKeys: readonly TenantOrderKey[] = ['schema', 'name', 'created_at'];
/** The page sizes offered; the URL may ask for any the API takes (1 to 100). */
export const pageSizes: readonly number[] = [10, 20, 50, 100];

export const defaultOrdering: TenantOrdering = 'created_at';
export const defaultLimit = 20;
/** The longest search the API takes. */
export const maxSearch = 200;

/** The list a page of the tenant list shows, as its URL says. */
export interface TenantListParams {
  /** The search as typed; the API gets it trimmed. */
  q: string;
  /** '' for every state. */
  state: TenantState | '';
  ordering: TenantOrdering;
  limit: number;
}

export const defaultParams: TenantListParams = { q: '', state: '', ordering: defaultOrdering, limit: defaultLimit };

function isState(v: string | null): v is TenantState {
  return tenantStates.includes(v as TenantState);
}

function isOrdering(v: string | null): v is TenantOrdering {
  return v !== null && tenantOrderKeys.includes((v.startsWith('-') ? v.slice(1) : v) as TenantOrderKey);
}

/** readTenantParams reads the list's parameters from a page's URL. */
export function readTenantParams(sp: URLSearchParams): TenantListParams {
  const state = sp.get('state');
  const ordering = sp.get('ordering');
  const limit = Number(sp.get('limit'));
  return {
    q: (sp.get('q') ?? '').slice(0, maxSearch),
    state: isState(state) ? state : '',
    ordering: isOrdering(ordering) ? ordering : defaultOrdering,
    limit: Number.isInteger(limit) && limit >= 1 && limit <= 100 ? limit : defaultLimit,
  };
}

/**
 * withTenantParam returns the URL parameters with one of the list's set,
 * leaving out a default (an empty search, every state, oldest first, 20
 * a page) so that the plain list keeps its plain address. Other
 * parameters are kept.
 */
export function withTenantParam<K extends keyof TenantListParams>(sp: URLSearchParams, key: K, value: TenantListParams[K]): URLSearchParams {
  const next = new URLSearchParams(sp);
  if (value === defaultParams[key] || value === '') next.delete(key);
  else next.set(key, String(value));
  return next;
}

/** nextOrdering is the sort after a click on a column: ascending first, then each click turns it round. */
export function nextOrdering(ordering: TenantOrdering, key: TenantOrderKey): TenantOrdering {
  return ordering === key ? (`-${key}` as TenantOrdering) : key;
}

/** isFiltered reports a list narrowed by a search or a state. */
export function isFiltered(p: TenantListParams): boolean {
  return p.q.trim() !== '' || p.state !== '';
}

/** tenantListQuery is the query of GET /api/platform/tenants/ for a page of the list. */
export function tenantListQuery(p: TenantListParams, cursor: string): Record<string, string | number | undefined> {
  return {
    q: p.q.trim() || undefined,
    state: p.state || undefined,
    ordering: p.ordering,
    limit: p.limit,
    cursor: cursor || undefined,
  };
}

/** listKey names one list (search, state, sort, size): its pages' cursors belong to it. */
export function listKey(p: TenantListParams): string {
  return JSON.stringify([p.ordering, p.state, p.q.trim(), p.limit]);
}

export const tenantKeys = {
  all: ['tenants'] as const,
  lists: ['tenants', 'list'] as const,
  list: (p: TenantListParams, cursor: string) => ['tenants', 'list', listKey(p), cursor] as const,
  item: (schema: string) => ['tenants', 'item', schema] as const,
  move: (schema: string) => ['tenants', 'item', schema, 'move'] as const,
};

export function fetchTenants(api: ApiClient, p: TenantListParams, cursor: string, signal?: AbortSignal): Promise<Page<Tenant>> {
  return api.get<Page<Tenant>>('/api/platform/tenants/', { query: tenantListQuery(p, cursor), signal });
}

export const tenantPath = (schema: string) => `/api/platform/tenants/${encodeURIComponent(schema)}/`;
/** The tenant's latest move: POST starts one, GET reads how far it got. */
export const tenantMovePath = (schema: string) => `${tenantPath(schema)}move`;
/** The states after which a move does no more. */
export const moveEnded = (state: string) => state === 'done' || state === 'failed';

/** suspendTenant stops serving a tenant: its users are refused (403 tenant_suspended) until it is resumed. */
export function suspendTenant(api: ApiClient, schema: string): Promise<Tenant> {
  return api.send<Tenant>('POST', `/api/platform/tenants/${encodeURIComponent(schema)}/suspend`);
}

/** resumeTenant serves a suspended tenant again. */
export function resumeTenant(api: ApiClient, schema: string): Promise<Tenant> {
  return api.send<Tenant>('POST', `/api/platform/tenants/${encodeURIComponent(schema)}/resume`);
}

/**
 * putTenant shows a tenant as the API just answered it, on its page and in
 * every cached page of the list; null drops it (deleted). The lists are
 * then read again, as the change may move it in or out of a filtered one.
 */
export function putTenant(qc: QueryClient, schema: string, t: Tenant | null): void {
  if (t) qc.setQueryData(tenantKeys.item(schema), t);
  else qc.removeQueries({ queryKey: tenantKeys.item(schema) });
  qc.setQueriesData<Page<Tenant>>({ queryKey: tenantKeys.lists }, (old) =>
    old
      ? {
          ...old,
          results: t ? old.results.map((x) => (x.schema === schema ? t : x)) : old.results.filter((x) => x.schema !== schema),
        }
      : old,
  );
  void qc.invalidateQueries({ queryKey: tenantKeys.lists });
}
