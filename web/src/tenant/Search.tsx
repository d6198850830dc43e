import { useEffect, useId, useRef, useState } from 'react';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useNavigate } from 'react-router';
import type { Page, Product } from '../api/types';
import { useApi } from '../auth';
import { ErrorLine } from '../components/ui';
import { formatPrice } from '../format';
import { useDebounced } from '../useDebounced';

/** debounceMs is how long typing must pause before a search is sent. */
export const debounceMs = 250;

/** Search is the header's search box: results as you type, from the tenant's search index. */
export function Search() {
  const api = useApi();
  const navigate = useNavigate();
  const [text, setText] = useState('');
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const q = useDebounced(text.trim(), debounceMs);
  const id = useId();
  const box = useRef<HTMLDivElement>(null);

  const res = useQuery({
    queryKey: ['search', q],
    queryFn: ({ signal }) => api.get<Page<Product>>('/api/catalog/products/search/', { query: { q, limit: 8 }, signal }),
    enabled: q.length > 0,
    placeholderData: keepPreviousData,
    staleTime: 2_000,
  });

  // A new query starts with no option active (set while rendering, as
  // React advises for state that follows a value, not in an effect).
  const [activeFor, setActiveFor] = useState(q);
  if (activeFor !== q) {
    setActiveFor(q);
    setActive(-1);
  }
  useEffect(() => {
    if (!open) return;
    const onDown = (e: MouseEvent) => {
      if (box.current && !box.current.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener('mousedown', onDown);
    return () => document.removeEventListener('mousedown', onDown);
  }, [open]);

  const results = q.length > 0 ? (res.data?.results ?? []) : [];
  const go = (p: Product) => {
    setOpen(false);
    setText('');
    navigate(`/products/${p.id}`);
  };
  const typing = text.trim() !== q || (res.isFetching && !res.data);
  const show = open && text.trim().length > 0;

  return (
    <div className="search" ref={box} role="search">
      <label htmlFor={`${id}-q`} className="sr-only">
        Search products
      </label>
      <input
        id={`${id}-q`}
        type="search"
        placeholder="Search products"
        value={text}
        autoComplete="off"
        role="combobox"
        aria-expanded={show}
        aria-controls={`${id}-list`}
        aria-activedescendant={active >= 0 ? `${id}-opt-${active}` : undefined}
        onChange={(e) => {
          setText(e.target.value);
          setOpen(true);
        }}
        onFocus={() => setOpen(true)}
        onKeyDown={(e) => {
          if (e.key === 'Escape') setOpen(false);
          else if (e.key === 'ArrowDown') {
            e.preventDefault();
            setOpen(true);
            setActive((a) => Math.min(results.length - 1, a + 1));
          } else if (e.key === 'ArrowUp') {
            e.preventDefault();
            setActive((a) => Math.max(-1, a - 1));
          } else if (e.key === 'Enter' && active >= 0 && results[active]) {
            e.preventDefault();
            go(results[active]);
          }
        }}
      />
      {show ? (
        <div className="search-panel" data-testid="search-results">
          {res.isError ? (
            <ErrorLine error={res.error} />
          ) : results.length === 0 ? (
            <p className="search-state">{typing || res.isFetching ? 'Searching…' : `No products match “${q}”.`}</p>
          ) : (
            <ul id={`${id}-list`} role="listbox" aria-label="Search results" aria-busy={res.isFetching}>
              {results.map((p, i) => (
                <li
                  key={p.id}
                  id={`${id}-opt-${i}`}
                  role="option"
                  aria-selected={i === active}
                  className={i === active ? 'active' : undefined}
                  onMouseDown={(e) => e.preventDefault()}
                  onClick={() => go(p)}
                >
                  <span className="search-name">{p.name}</span>
                  <span className="search-meta">
                    <span className="mono">{p.sku}</span> · {formatPrice(p.price, p.currency)}
                  </span>
                </li>
              ))}
            </ul>
          )}
        </div>
      ) : null}
    </div>
  );
}
