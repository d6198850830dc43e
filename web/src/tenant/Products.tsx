import { useState } from 'react';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { isStaleWrite } from '../api/errors';
import { cursorOf } from '../api/client';
import type { OrderKey, Product } from '../api/types';
import { useApi, useSession } from '../auth';
import { ConfirmDialog, Empty, ErrorLine, Loading, Notice, Pager, RetryError, useCursorStack, useFlash } from '../components/ui';
import { formatDateTime, formatPrice } from '../format';
import { applyWrite, bulkDeleteProducts, deleteProduct, etagOf, fetchProducts, productKeys } from './products';
import { ProductsCsv } from './ProductsCsv';

const columns: { key: OrderKey; label: string; className?: string }[] = [
  { key: 'sku', label: 'SKU' },
  { key: 'name', label: 'Name' },
  { key: 'price', label: 'Price', className: 'num' },
  { key: 'stock', label: 'Stock', className: 'num hide-narrow' },
  { key: 'updated_at', label: 'Updated', className: 'hide-narrow' },
];

const sizes = [10, 20, 50, 100];

/** Products is the tenant's product table: sorting, pages, and (staff) create, edit, delete. */
export function Products() {
  const api = useApi();
  const session = useSession();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const ordering = params.get('ordering') ?? '-created_at';
  const limit = sizes.includes(Number(params.get('limit'))) ? Number(params.get('limit')) : 20;
  const pages = useCursorStack();
  const [toDelete, setToDelete] = useState<Product | null>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [confirmBulk, setConfirmBulk] = useState(false);
  const [bulkDone, setBulkDone] = useState<string | null>(null);
  const flash = useFlash();

  const q = useQuery({
    queryKey: productKeys.list(ordering, pages.cursor, limit),
    queryFn: ({ signal }) => fetchProducts(api, ordering, pages.cursor, limit, signal),
    placeholderData: keepPreviousData,
  });

  const del = useMutation({
    mutationFn: (p: Product) => deleteProduct(api, p.id, etagOf(p)),
    onSuccess: (_, p) => {
      applyWrite(qc, p.id, null);
      setToDelete(null);
    },
  });

  const bulkDel = useMutation({
    mutationFn: (ids: string[]) => bulkDeleteProducts(api, ids),
    onSuccess: (res, ids) => {
      for (const id of ids) if (!res.not_found.includes(id)) applyWrite(qc, id, null);
      setSelected(new Set());
      setConfirmBulk(false);
      setBulkDone(`Deleted ${res.deleted} product${res.deleted === 1 ? '' : 's'}.${res.not_found.length ? ` ${res.not_found.length} were already gone.` : ''}`);
    },
  });
  const toggle = (id: string, on: boolean) =>
    setSelected((s) => {
      const n = new Set(s);
      if (on) n.add(id);
      else n.delete(id);
      return n;
    });
  const shown = q.data?.results ?? [];
  const allShown = shown.length > 0 && shown.every((p) => selected.has(p.id));

  // From the latest parameters, not this render's: two quick changes (page
  // size, then a sort) must both stick.
  const setQuery = (k: string, v: string) => {
    setParams(
      (prev) => {
        const next = new URLSearchParams(prev);
        next.set(k, v);
        return next;
      },
      { replace: true },
    );
    pages.reset();
  };
  // First click ascending, the next one descending, and so on.
  const sortBy = (key: OrderKey) => setQuery('ordering', ordering === key ? `-${key}` : key);

  const next = cursorOf(q.data?.next);
  return (
    <div className="page">
      <div className="page-head">
        <h1>Products</h1>
        {session.staff ? (
          <Link to="/products/new" className="btn btn-primary">
            New product
          </Link>
        ) : null}
      </div>
      {session.staff ? <ProductsCsv /> : null}
      {flash ? <Notice kind="success">{flash}</Notice> : null}
      {bulkDone ? <Notice kind="success">{bulkDone}</Notice> : null}
      {session.staff && selected.size > 0 ? (
        <div className="bulk-bar" aria-label="Selected products">
          <span>{selected.size} selected</span>
          <button
            type="button"
            className="btn btn-small btn-danger-quiet"
            onClick={() => {
              bulkDel.reset();
              setConfirmBulk(true);
            }}
          >
            Delete selected
          </button>
          <button type="button" className="btn btn-small" onClick={() => setSelected(new Set())}>
            Clear selection
          </button>
        </div>
      ) : null}
      {q.isPending ? (
        <Loading label="Loading products…" />
      ) : q.isError && !q.data ? (
        <RetryError error={q.error} onRetry={q.refetch} />
      ) : q.data.results.length === 0 && pages.page === 1 ? (
        <Empty>
          <p>No products yet.</p>
          {session.staff ? (
            <Link to="/products/new" className="btn btn-primary">
              Create the first one
            </Link>
          ) : (
            <p className="muted">Staff can add products.</p>
          )}
        </Empty>
      ) : (
        <>
          {q.isError ? <ErrorLine error={q.error} /> : null}
          <div className="table-wrap">
            <table className="table" aria-busy={q.isFetching} data-testid="products-table">
              <thead>
                <tr>
                  {session.staff ? (
                    <th className="select-col">
                      <input
                        type="checkbox"
                        aria-label="Select every product shown"
                        checked={allShown}
                        onChange={(e) => setSelected(e.target.checked ? new Set(shown.map((p) => p.id)) : new Set())}
                      />
                    </th>
                  ) : null}
                  {columns.map((c) => {
                    const dir = ordering === c.key ? 'ascending' : ordering === `-${c.key}` ? 'descending' : undefined;
                    return (
                      <th key={c.key} className={c.className} aria-sort={dir ?? 'none'}>
                        <button type="button" className="sort" onClick={() => sortBy(c.key)}>
                          {c.label}
                          <span className="sort-mark" aria-hidden="true">
                            {dir === 'ascending' ? '▲' : dir === 'descending' ? '▼' : ''}
                          </span>
                        </button>
                      </th>
                    );
                  })}
                  {session.staff ? <th className="actions-col"><span className="sr-only">Actions</span></th> : null}
                </tr>
              </thead>
              <tbody>
                {q.data.results.map((p) => (
                  <tr key={p.id} data-sku={p.sku}>
                    {session.staff ? (
                      <td className="select-col">
                        <input type="checkbox" aria-label={`Select ${p.sku}`} checked={selected.has(p.id)} onChange={(e) => toggle(p.id, e.target.checked)} />
                      </td>
                    ) : null}
                    <td className="mono">
                      <Link to={`/products/${p.id}`}>{p.sku}</Link>
                    </td>
                    <td>{p.name}</td>
                    <td className="num">{formatPrice(p.price, p.currency)}</td>
                    <td className="num hide-narrow">{p.stock}</td>
                    <td className="hide-narrow">{formatDateTime(p.updated_at)}</td>
                    {session.staff ? (
                      <td className="actions-col">
                        <button type="button" className="btn btn-small" onClick={() => navigate(`/products/${p.id}`)}>
                          Edit
                        </button>
                        <button
                          type="button"
                          className="btn btn-small btn-danger-quiet"
                          onClick={() => {
                            del.reset();
                            setToDelete(p);
                          }}
                        >
                          Delete
                        </button>
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {q.data.results.length === 0 ? <Empty>No more products.</Empty> : null}
          <div className="list-foot">
            <Pager
              page={pages.page}
              hasPrev={pages.hasPrev}
              hasNext={!!next}
              onPrev={pages.prev}
              onNext={() => next && pages.next(next)}
              busy={q.isFetching}
            />
            <label className="page-size">
              Per page{' '}
              <select value={limit} onChange={(e) => setQuery('limit', e.target.value)}>
                {sizes.map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
              </select>
            </label>
          </div>
        </>
      )}
      <ConfirmDialog
        open={toDelete !== null}
        title="Delete this product?"
        confirmLabel="Delete"
        busy={del.isPending}
        error={
          del.error
            ? isStaleWrite(del.error)
              ? new Error('Someone else changed this product since this page loaded. Reload the list and try again')
              : del.error
            : null
        }
        onConfirm={() => toDelete && del.mutate(toDelete)}
        onCancel={() => setToDelete(null)}
      >
        {toDelete ? (
          <p>
            <strong>{toDelete.name}</strong> (<span className="mono">{toDelete.sku}</span>) will be deleted. This cannot be undone.
          </p>
        ) : null}
      </ConfirmDialog>
      <ConfirmDialog
        open={confirmBulk}
        title={`Delete ${selected.size} product${selected.size === 1 ? '' : 's'}?`}
        confirmLabel="Delete them"
        busy={bulkDel.isPending}
        error={bulkDel.error}
        onConfirm={() => bulkDel.mutate([...selected])}
        onCancel={() => setConfirmBulk(false)}
      >
        <p>The selected products will be deleted, all at once or none. This cannot be undone.</p>
      </ConfirmDialog>
    </div>
  );
}
