import { useState } from 'react';

/**
 * The state of a form or a button that sends one request at a time: busy
 * while it runs, the error it ended with, or the message it succeeded with.
 */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  // run clears the last outcome, then records fn's message (the string it
  // returns, if any) or its error; it resolves to whether fn succeeded.
  const run = async (fn: () => Promise<string | void>): Promise<boolean> => {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const message = await fn();
      if (typeof message === 'string') setDone(message);
      return true;
    } catch (err) {
      setError(err);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, done, run };
}
