import { useState, type FormEvent } from 'react';
import { Navigate, useLocation } from 'react-router';
import { formErrors } from '../api/errors';
import { useAuth } from '../auth';
import { site } from '../site';
import { ErrorLine, Field, Notice } from './ui';

/** SignIn signs a tenant user in on a tenant domain, a superuser on the public domain. */
export function SignIn() {
  const { session, signIn, notice } = useAuth();
  const location = useLocation();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const from = (location.state as { from?: string } | null)?.from ?? '/';

  if (session) return <Navigate to={from} replace />;

  const errs = formErrors(error, ['email', 'password']);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(email, password);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const platform = site.kind === 'platform';
  return (
    <main className="signin">
      <form className="card signin-card" onSubmit={submit} noValidate aria-labelledby="signin-title">
        <h1 id="signin-title">{platform ? 'Platform admin' : site.name || 'Sign in'}</h1>
        <p className="muted">{platform ? 'Sign in with a superuser account.' : `Sign in to ${site.name || 'your workspace'}.`}</p>
        {notice ? <Notice kind="warning">{notice}</Notice> : null}
        <Field label="Email" name="email" type="email" autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} error={errs.fields.email} autoFocus />
        <Field
          label="Password"
          name="password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={errs.fields.password}
        />
        <ErrorLine message={errs.form} />
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
