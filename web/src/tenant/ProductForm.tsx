import { useEffect, useState, type FormEvent } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useNavigate, useParams } from 'react-router';
import { ApiError, formErrors, isStaleWrite } from '../api/errors';
import type { Product } from '../api/types';
import { HistoryPanel } from '../audit/HistoryPanel';
import { useApi, useSession } from '../auth';
import { ConfirmDialog, ErrorLine, Field, Loading, Notice, TextArea } from '../components/ui';
import { formatDateTime } from '../format';
import {
  applyWrite,
  createProduct,
  deleteProduct,
  fetchNewerProduct,
  fetchProduct,
  productKeys,
  replaceProduct,
  type LoadedProduct,
  type ProductDraft,
} from './products';

interface FormState {
  sku: string;
  name: string;
  description: string;
  price: string;
  currency: string;
  stock: string;
}

const empty: FormState = { sku: '', name: '', description: '', price: '', currency: 'EUR', stock: '0' };
const fields = ['sku', 'name', 'description', 'price', 'currency', 'stock'] as const;
const labels = { sku: 'SKU' };

function toForm(p: Product): FormState {
  return { sku: p.sku, name: p.name, description: p.description, price: p.price, currency: p.currency, stock: String(p.stock) };
}

function toInput(f: FormState): ProductDraft {
  const stock = f.stock.trim() === '' ? 0 : Number(f.stock);
  return {
    sku: f.sku.trim(),
    name: f.name,
    description: f.description,
    price: f.price.trim(),
    currency: f.currency.trim().toUpperCase(),
    // Not a number: sent as typed, and the API says what is wrong with it.
    stock: Number.isFinite(stock) ? stock : f.stock,
  };
}

/** ProductPage creates (/products/new) or shows and edits (/products/:id) one product. */
export function ProductPage() {
  const { id } = useParams();
  return id ? <EditProduct id={id} /> : <ProductForm />;
}

function EditProduct({ id }: { id: string }) {
  const api = useApi();
  const qc = useQueryClient();
  const q = useQuery({
    queryKey: productKeys.item(id),
    queryFn: ({ signal }) => fetchProduct(api, qc, id, signal),
    // The form keeps the version it was opened at; a refetch only tells
    // whether someone else has saved since.
    refetchInterval: 15_000,
  });
  if (q.isPending) return <div className="page"><Loading label="Loading product…" /></div>;
  if (q.isError) {
    const gone = q.error instanceof ApiError && q.error.status === 404;
    return (
      <div className="page">
        <h1>Product</h1>
        <ErrorLine message={gone ? 'This product does not exist (any more): someone may have deleted it.' : undefined} error={gone ? undefined : q.error} />
        <Link to="/" className="btn">Back to products</Link>
      </div>
    );
  }
  return <ProductForm loaded={q.data} />;
}

function ProductForm({ loaded }: { loaded?: LoadedProduct }) {
  const api = useApi();
  const session = useSession();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const [base, setBase] = useState<LoadedProduct | undefined>(loaded);
  const [form, setForm] = useState<FormState>(loaded ? toForm(loaded.product) : empty);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [reloaded, setReloaded] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [deleteError, setDeleteError] = useState<unknown>(null);
  const editing = base !== undefined;
  const readOnly = !session.staff;
  const newer = editing && loaded && loaded.product.version > base.product.version ? loaded.product : null;

  useEffect(() => {
    document.title = editing ? `${base.product.name} · Products` : 'New product';
  }, [editing, base]);

  const errs = formErrors(error, fields, labels);
  const stale = isStaleWrite(error);
  const set = (k: keyof FormState) => (e: { target: { value: string } }) => setForm((f) => ({ ...f, [k]: e.target.value }));

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (readOnly) return;
    setBusy(true);
    setError(null);
    setReloaded(false);
    try {
      if (editing) {
        const p = await replaceProduct(api, base.product.id, base.etag, toInput(form));
        applyWrite(qc, p.id, p);
        navigate('/', { state: { flash: `Saved ${p.sku}.` } });
      } else {
        const p = await createProduct(api, toInput(form));
        applyWrite(qc, p.id, p, true);
        navigate('/', { state: { flash: `Created ${p.sku}.` } });
      }
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  const reload = async () => {
    if (!base) return;
    setBusy(true);
    try {
      const fresh = await fetchNewerProduct(api, qc, base.product.id, base.product.version);
      qc.setQueryData(productKeys.item(base.product.id), fresh);
      setBase(fresh);
      setForm(toForm(fresh.product));
      setError(null);
      setReloaded(true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    if (!base) return;
    setBusy(true);
    setDeleteError(null);
    try {
      await deleteProduct(api, base.product.id, base.etag);
      applyWrite(qc, base.product.id, null);
      navigate('/', { state: { flash: `Deleted ${base.product.sku}.` } });
    } catch (err) {
      setDeleteError(
        isStaleWrite(err) ? new Error('Someone else saved this product since you opened it. Reload it before deleting') : err,
      );
      setBusy(false);
    }
  };

  const title = !editing ? 'New product' : readOnly ? base.product.name : `Edit ${base.product.name}`;
  return (
    <div className="page page-narrow">
      <p className="crumbs">
        <Link to="/">Products</Link> /
      </p>
      <h1>{title}</h1>
      {editing ? (
        <p className="muted">
          Version {base.product.version} · updated {formatDateTime(base.product.updated_at)}
        </p>
      ) : null}
      {stale ? (
        <div className="conflict" role="alert" data-testid="conflict">
          <strong>Someone else saved this product first.</strong>
          <p>Your changes were not saved. Reload to see their version (your edits here will be replaced), then make your change again.</p>
          <button type="button" className="btn btn-primary" onClick={reload} disabled={busy}>
            Reload their version
          </button>
        </div>
      ) : newer ? (
        <Notice kind="warning">
          Someone else saved this product (version {newer.version}) since you opened it. Saving now will be refused;{' '}
          <button type="button" className="linklike" onClick={reload}>
            reload it
          </button>
          .
        </Notice>
      ) : null}
      {reloaded ? <Notice kind="info">Reloaded: this is the latest saved version.</Notice> : null}
      <form className="card form" onSubmit={submit} noValidate aria-label={title}>
        <fieldset disabled={readOnly || busy}>
          <div className="grid-2">
            <Field label="SKU" name="sku" value={form.sku} onChange={set('sku')} error={errs.fields.sku} autoComplete="off" spellCheck={false} autoFocus={!editing} />
            <Field label="Name" name="name" value={form.name} onChange={set('name')} error={errs.fields.name} autoComplete="off" />
          </div>
          <TextArea label="Description" name="description" value={form.description} onChange={set('description')} error={errs.fields.description} rows={4} />
          <div className="grid-3">
            <Field label="Price" name="price" value={form.price} onChange={set('price')} error={errs.fields.price} inputMode="decimal" autoComplete="off" placeholder="19.99" />
            <Field
              label="Currency"
              name="currency"
              value={form.currency}
              onChange={set('currency')}
              error={errs.fields.currency}
              maxLength={3}
              autoCapitalize="characters"
              autoComplete="off"
              hint="ISO 4217, e.g. EUR"
            />
            <Field label="Stock" name="stock" value={form.stock} onChange={set('stock')} error={errs.fields.stock} inputMode="numeric" autoComplete="off" />
          </div>
        </fieldset>
        {!stale ? <ErrorLine message={errs.form} /> : null}
        <div className="actions">
          {editing && !readOnly ? (
            <button type="button" className="btn btn-danger-quiet push-left" onClick={() => setConfirmDelete(true)} disabled={busy}>
              Delete
            </button>
          ) : null}
          <Link to="/" className="btn">
            {readOnly ? 'Back' : 'Cancel'}
          </Link>
          {!readOnly ? (
            <button type="submit" className="btn btn-primary" disabled={busy}>
              {busy ? 'Saving…' : editing ? 'Save' : 'Create'}
            </button>
          ) : null}
        </div>
      </form>
      {editing && session.staff ? <HistoryPanel base="/api/admin/audit/" targetType="product" targetId={base.product.id} refresh={base.product.version} /> : null}
      {editing ? (
        <ConfirmDialog
          open={confirmDelete}
          title="Delete this product?"
          confirmLabel="Delete"
          busy={busy}
          error={deleteError}
          onConfirm={remove}
          onCancel={() => {
            setConfirmDelete(false);
            setDeleteError(null);
          }}
        >
          <p>
            <strong>{base.product.name}</strong> (<span className="mono">{base.product.sku}</span>) will be deleted. This cannot be undone.
          </p>
        </ConfirmDialog>
      ) : null}
    </div>
  );
}
