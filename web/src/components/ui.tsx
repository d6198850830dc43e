// Small building blocks shared by every page: fields with their error,
// error lines (with a retry), loading and empty states, the pager, a
// confirmation dialog.
import { useEffect, useId, useRef, useState, type InputHTMLAttributes, type ReactNode, type TextareaHTMLAttributes } from 'react';
import { useLocation, useNavigate } from 'react-router';
import { describe } from '../api/errors';

interface FieldProps extends InputHTMLAttributes<HTMLInputElement> {
  label: string;
  name: string;
  error?: string;
  hint?: string;
}

/** Field is a labelled input with its error message right under it. */
export function Field({ label, name, error, hint, className, ...input }: FieldProps) {
  const id = useId();
  const msg = `${id}-msg`;
  return (
    <div className={`field${error ? ' field-invalid' : ''}${className ? ` ${className}` : ''}`}>
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        name={name}
        aria-invalid={error ? true : undefined}
        aria-describedby={error || hint ? msg : undefined}
        {...input}
      />
      {error ? (
        <p id={msg} className="field-error" data-field-error={name}>
          {error}
        </p>
      ) : hint ? (
        <p id={msg} className="field-hint">
          {hint}
        </p>
      ) : null}
    </div>
  );
}

interface AreaProps extends TextareaHTMLAttributes<HTMLTextAreaElement> {
  label: string;
  name: string;
  error?: string;
}

export function TextArea({ label, name, error, ...area }: AreaProps) {
  const id = useId();
  return (
    <div className={`field${error ? ' field-invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      <textarea id={id} name={name} aria-invalid={error ? true : undefined} aria-describedby={error ? `${id}-msg` : undefined} {...area} />
      {error ? (
        <p id={`${id}-msg`} className="field-error" data-field-error={name}>
          {error}
        </p>
      ) : null}
    </div>
  );
}

/** ErrorLine shows an error (or a message) as one readable line, with an optional action. */
export function ErrorLine({ error, message, action }: { error?: unknown; message?: string; action?: ReactNode }) {
  const text = message ?? (error != null ? describe(error) : undefined);
  if (!text) return null;
  return (
    <div className="error-line" role="alert">
      <span>{text}</span>
      {action}
    </div>
  );
}

/** RetryError is the error of a load that failed, with a button to load again. */
export function RetryError({ error, onRetry }: { error: unknown; onRetry: () => unknown }) {
  return (
    <ErrorLine
      error={error}
      action={
        <button type="button" className="btn btn-small" onClick={() => void onRetry()}>
          Retry
        </button>
      }
    />
  );
}

export function Notice({ children, kind = 'info' }: { children: ReactNode; kind?: 'info' | 'success' | 'warning' }) {
  return (
    <div className={`notice notice-${kind}`} role="status">
      {children}
    </div>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

/** Pager moves through a cursor-paginated list: previous pages are remembered by the caller. */
export function Pager({
  page,
  hasPrev,
  hasNext,
  onPrev,
  onNext,
  busy,
}: {
  page: number;
  hasPrev: boolean;
  hasNext: boolean;
  onPrev: () => void;
  onNext: () => void;
  busy?: boolean;
}) {
  if (!hasPrev && !hasNext) return null;
  return (
    <nav className="pager" aria-label="Pages">
      <button type="button" className="btn" onClick={onPrev} disabled={!hasPrev || busy}>
        ← Previous
      </button>
      <span className="pager-page">Page {page}</span>
      <button type="button" className="btn" onClick={onNext} disabled={!hasNext || busy}>
        Next →
      </button>
    </nav>
  );
}

/**
 * ConfirmDialog asks before something that cannot be undone. With
 * confirmText, the user has to type it (a tenant's schema name) first.
 */
export function ConfirmDialog({
  open,
  title,
  children,
  confirmLabel,
  confirmText,
  typed,
  onTyped,
  busy,
  error,
  onConfirm,
  onCancel,
}: {
  open: boolean;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  confirmText?: string;
  typed?: string;
  onTyped?: (v: string) => void;
  busy?: boolean;
  error?: unknown;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  const blocked = confirmText !== undefined && typed !== confirmText;
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={`${id}-title`}
      onCancel={(e) => {
        e.preventDefault();
        if (!busy) onCancel();
      }}
    >
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          if (!blocked && !busy) onConfirm();
        }}
      >
        <h2 id={`${id}-title`}>{title}</h2>
        <div className="dialog-body">{children}</div>
        {confirmText !== undefined ? (
          <Field
            label={`Type ${confirmText} to confirm`}
            name="confirm"
            value={typed ?? ''}
            onChange={(e) => onTyped?.(e.target.value)}
            autoComplete="off"
            spellCheck={false}
            autoFocus
          />
        ) : null}
        <ErrorLine error={error} />
        <div className="actions">
          <button type="button" className="btn" onClick={onCancel} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="btn btn-danger" disabled={blocked || busy} autoFocus={confirmText === undefined}>
            {busy ? 'Working…' : confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/**
 * useCursorStack keeps the cursors of the pages visited, so that a list
 * paginated with `next` cursors can also go back. A cursor belongs to the
 * list it came from: with a key (the list's filters and sort), a new key
 * starts again at the first page, whatever changed it (a control of the
 * page, the back button, a link).
 */
export function useCursorStack(key = '') {
  const [state, setState] = useState<{ key: string; stack: string[] }>({ key, stack: [''] });
  const stack = state.key === key ? state.stack : [''];
  const current = (s: { key: string; stack: string[] }) => (s.key === key ? s.stack : ['']);
  return {
    cursor: stack[stack.length - 1],
    page: stack.length,
    hasPrev: stack.length > 1,
    next: (c: string) => setState((s) => ({ key, stack: [...current(s), c] })),
    prev: () =>
      setState((s) => {
        const st = current(s);
        return { key, stack: st.length > 1 ? st.slice(0, -1) : st };
      }),
    reset: () => setState({ key, stack: [''] }),
  };
}

/**
 * useFlash returns the one-off message a page was sent with
 * (navigate(to, { state: { flash } })) and drops it from the history
 * entry, so that a reload does not show it again.
 */
export function useFlash(): string | undefined {
  const location = useLocation();
  const navigate = useNavigate();
  const [flash] = useState(() => (location.state as { flash?: string } | null)?.flash);
  useEffect(() => {
    if ((location.state as { flash?: string } | null)?.flash) {
      navigate({ pathname: location.pathname, search: location.search }, { replace: true, state: null });
    }
  }, [location, navigate]);
  return flash;
}
