// The products CSV import and export (staff): POST
// /api/admin/products/import with the file as text/csv, and GET
// /api/admin/products/export, saved as a file.
import type { QueryClient } from '@tanstack/react-query';
import type { ApiClient } from '../api/client';
import { ApiError } from '../api/errors';
import type { ImportResult } from '../api/types';
import { productKeys } from './products';

/** The largest file the API takes: 10 MiB. */
export const maxImportBytes = 10 << 20;

/** importProducts sends a CSV file; every row is applied, or none (a 422 naming the bad lines). */
export function importProducts(api: ApiClient, file: Blob): Promise<ImportResult> {
  return api.send<ImportResult>('POST', '/api/admin/products/import', undefined, { raw: { body: file, type: 'text/csv' } });
}

/** exportProducts reads every product as CSV. */
export function exportProducts(api: ApiClient, signal?: AbortSignal): Promise<Blob> {
  return api.download('/api/admin/products/export', signal);
}

/** afterImport reads the product lists again: the API dropped its cached pages at the commit. */
export function afterImport(qc: QueryClient): Promise<void> {
  return qc.invalidateQueries({ queryKey: productKeys.lists });
}

/** A bad line of a refused import. */
export interface BadLine {
  /** The line as a spreadsheet numbers it (the header is 1); null for the note of lines not listed. */
  line: number | null;
  message: string;
}

/**
 * badLinesOf lists the bad lines a refused import names, in line order,
 * with the API's note of how many more there are last; [] for any other
 * error.
 */
export function badLinesOf(err: unknown): BadLine[] {
  if (!(err instanceof ApiError) || err.code !== 'invalid') return [];
  const out: BadLine[] = [];
  let more: string | undefined;
  for (const [k, message] of Object.entries(err.details)) {
    const m = /^line (\d+)$/.exec(k);
    if (m) out.push({ line: Number(m[1]), message });
    else if (k === 'more') more = message;
  }
  out.sort((a, b) => a.line! - b.line!);
  if (more) out.push({ line: null, message: more });
  return out;
}

/** importSummary says what an import did, in a sentence. */
export function importSummary(r: ImportResult): string {
  const n = (k: number, what: string) => `${k} ${what}`;
  if (r.created === 0 && r.updated === 0) return 'Imported: nothing to change, every product was already as in the file.';
  return `Imported: ${n(r.created, 'created')}, ${n(r.updated, 'updated')}.`;
}
