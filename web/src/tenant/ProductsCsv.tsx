import { useRef, useState } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { ImportResult } from '../api/types';
import { useApi } from '../auth';
import { ErrorLine, Notice } from '../components/ui';
import { afterImport, badLinesOf, exportProducts, importProducts, importSummary, maxImportBytes } from './productsCsv';

/** ProductsCsv is the staff's Import button (a CSV file) and Export link of the products page. */
export function ProductsCsv() {
  const api = useApi();
  const qc = useQueryClient();
  const input = useRef<HTMLInputElement>(null);
  const [tooBig, setTooBig] = useState<string | null>(null);
  const imp = useMutation({
    mutationFn: (file: File) => importProducts(api, file),
    onSuccess: () => afterImport(qc),
  });
  const exp = useMutation({
    mutationFn: async () => {
      const blob = await exportProducts(api);
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = 'products.csv';
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    },
  });
  const pick = (file: File | undefined) => {
    if (input.current) input.current.value = ''; // the same file may be picked again
    if (!file) return;
    imp.reset();
    setTooBig(null);
    if (file.size > maxImportBytes) {
      setTooBig(`${file.name} is larger than 10 MiB, the most one import takes. Split it into smaller files.`);
      return;
    }
    imp.mutate(file);
  };
  return (
    <>
      <div className="csv-actions">
        <label className="btn" aria-disabled={imp.isPending}>
          {imp.isPending ? 'Importing…' : 'Import CSV'}
          <input
            ref={input}
            type="file"
            accept=".csv,text/csv"
            className="sr-only"
            data-testid="import-file"
            disabled={imp.isPending}
            onChange={(e) => pick(e.target.files?.[0])}
          />
        </label>
        <button type="button" className="btn" onClick={() => exp.mutate()} disabled={exp.isPending}>
          {exp.isPending ? 'Exporting…' : 'Export CSV'}
        </button>
      </div>
      <ImportOutcome result={imp.data} error={tooBig ? new Error(tooBig) : (imp.error ?? exp.error)} />
    </>
  );
}

/** ImportOutcome shows what an import did, or why nothing was imported: each bad line with its number. */
export function ImportOutcome({ result, error }: { result?: ImportResult; error?: unknown }) {
  if (result) return <Notice kind="success">{importSummary(result)}</Notice>;
  if (!error) return null;
  const bad = badLinesOf(error);
  if (bad.length === 0) return <ErrorLine error={error} />;
  return (
    <div className="import-errors" role="alert" data-testid="import-errors">
      <ErrorLine error={error} />
      <ul>
        {bad.map((b) => (
          <li key={b.line ?? 'more'} data-line={b.line ?? undefined}>
            {b.line !== null ? <strong>Line {b.line}: </strong> : null}
            {b.message}
          </li>
        ))}
      </ul>
      <p className="muted">The header row is line 1. Fix these lines, then import the whole file again.</p>
    </div>
  );
}
