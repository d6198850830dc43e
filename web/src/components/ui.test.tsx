import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/errors';
import { RetryError } from './ui';

describe('RetryError', () => {
  it('says what failed, as an alert, with a Retry button', () => {
    const html = renderToStaticMarkup(<RetryError error={new ApiError(503, 'unavailable', 'search is unavailable')} onRetry={() => undefined} />);
    expect(html).toBe(
      '<div class="error-line" role="alert"><span>Search is unavailable. Try again in a moment.</span>' +
        '<button type="button" class="btn btn-small">Retry</button></div>',
    );
  });
});
