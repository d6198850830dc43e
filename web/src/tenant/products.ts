// Product reads and writes, and how the client keeps its own writes in view.
//
// The API caches product reads in Redis and drops those entries when the
// write's event reaches the cache worker, a moment after the write
// commits. Until then a read may still answer the previous version. So the
// client remembers its own recent writes for a while and lays them over
// what it reads: a page never shows an older version than the one this
// browser just saved, nor a product it just deleted.
import type { QueryClient } from '@tanstack/react-query';
import type { ApiClient } from '../api/client';
import type { Page, Product, ProductBulkDelete, ProductBulkDeleteResult, ProductInput } from '../api/types';

export const productKeys = {
  lists: ['products'] as const,
  list: (ordering: string, cursor: string, limit: number) => ['products', 'list', ordering, cursor, limit] as const,
  item: (id: string) => ['product', id] as const,
};

/**
 * ProductDraft is a product as its form sends it: ProductInput, except that
 * the currency and the stock go as the user typed them, so that a code
 * that is not ISO 4217 or a stock that is not a number reaches the API,
 * which says what is wrong next to the field.
 */
export type ProductDraft = Omit<ProductInput, 'currency' | 'stock'> & { currency: string; stock: number | string };

export interface LoadedProduct {
  product: Product;
  /** The ETag of the version read, sent back as If-Match. */
  etag: string;
}

const keepMs = 60_000;
const recent = new Map<string, { product: Product | null; at: number; created: boolean }>();

function fresh(): void {
  const now = Date.now();
  for (const [id, w] of recent) if (now - w.at > keepMs) recent.delete(id);
}

/** rememberWrite notes a product this browser saved (or deleted: null). */
export function rememberWrite(id: string, product: Product | null, created = false): void {
  recent.set(id, { product, at: Date.now(), created });
}

/** reconcile lays this browser's recent writes over a page read from the API. */
export function reconcile(results: Product[], firstPageByNewest: boolean): Product[] {
  fresh();
  const out: Product[] = [];
  const present = new Set<string>();
  for (const p of results) {
    present.add(p.id);
    const w = recent.get(p.id);
    if (!w) out.push(p);
    else if (w.product && w.product.version > p.version) out.push(w.product);
    else if (w.product) out.push(p);
    // else: deleted here; the read is older than the delete
  }
  if (firstPageByNewest) {
    const created = [...recent.values()]
      .filter((w) => w.created && w.product && !present.has(w.product.id))
      .map((w) => w.product!)
      .sort((a, b) => b.created_at.localeCompare(a.created_at));
    return [...created, ...out];
  }
  return out;
}

export const etagOf = (p: Product) => `"v${p.version}"`;

export async function fetchProducts(
  api: ApiClient,
  ordering: string,
  cursor: string,
  limit: number,
  signal?: AbortSignal,
): Promise<Page<Product>> {
  const page = await api.get<Page<Product>>('/api/catalog/products/', { query: { ordering, cursor, limit }, signal });
  return { ...page, results: reconcile(page.results, !cursor && ordering === '-created_at') };
}

export async function fetchProduct(api: ApiClient, qc: QueryClient, id: string, signal?: AbortSignal): Promise<LoadedProduct> {
  const r = await api.request<Product>(`/api/catalog/products/${encodeURIComponent(id)}/`, { signal });
  const loaded = { product: r.data, etag: r.headers.get('ETag') ?? etagOf(r.data) };
  const mine = recent.get(id)?.product;
  if (mine && mine.version > loaded.product.version) return { product: mine, etag: etagOf(mine) };
  const prev = qc.getQueryData<LoadedProduct>(productKeys.item(id));
  if (prev && prev.product.version > loaded.product.version) return prev;
  return loaded;
}

/**
 * fetchNewerProduct reads a product until the API answers a version above
 * `than` (its cache may lag a moment behind the write that made ours
 * stale), for up to about 3 seconds; then it returns what it has.
 */
export async function fetchNewerProduct(api: ApiClient, qc: QueryClient, id: string, than: number): Promise<LoadedProduct> {
  let last: LoadedProduct | null = null;
  for (let i = 0; i < 10; i++) {
    last = await fetchProduct(api, qc, id);
    if (last.product.version > than) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  return last!;
}

/** applyWrite puts a saved product (or a deletion: null) in every cached list and item. */
export function applyWrite(qc: QueryClient, id: string, product: Product | null, created = false): void {
  rememberWrite(id, product, created);
  for (const [key, old] of qc.getQueriesData<Page<Product>>({ queryKey: ['products', 'list'] })) {
    if (!old) continue;
    const [, , ordering, cursor] = key as readonly unknown[];
    qc.setQueryData(key, { ...old, results: reconcile(old.results, !cursor && ordering === '-created_at') });
  }
  if (product) qc.setQueryData<LoadedProduct>(productKeys.item(id), { product, etag: etagOf(product) });
  else qc.removeQueries({ queryKey: productKeys.item(id) });
  // Read again once the API's cache has caught up.
  setTimeout(() => void qc.invalidateQueries({ queryKey: productKeys.lists }), 1500);
}

export function createProduct(api: ApiClient, input: ProductInput | ProductDraft): Promise<Product> {
  return api.send<Product>('POST', '/api/catalog/products/', input);
}

export function replaceProduct(api: ApiClient, id: string, etag: string, input: ProductInput | ProductDraft): Promise<Product> {
  return api.send<Product>('PUT', `/api/catalog/products/${encodeURIComponent(id)}/`, input, { headers: { 'If-Match': etag } });
}

export function deleteProduct(api: ApiClient, id: string, etag: string): Promise<void> {
  return api.send<void>('DELETE', `/api/catalog/products/${encodeURIComponent(id)}/`, undefined, { headers: { 'If-Match': etag } });
}

/** bulkDeleteProducts deletes up to 500 products in one transaction; unknown ids come back in not_found. */
export function bulkDeleteProducts(api: ApiClient, ids: string[]): Promise<ProductBulkDeleteResult> {
  return api.send<ProductBulkDeleteResult>('POST', '/api/admin/products/bulk-delete', { ids } satisfies ProductBulkDelete);
}
