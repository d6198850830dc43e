package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// defaultTimeout bounds a call whose context has no deadline.
const defaultTimeout = time.Minute

// apiError is an error answer of Elasticsearch.
type apiError struct {
	Status int
	Type   string
	Reason string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("elasticsearch %d %s: %s", e.Status, e.Type, e.Reason)
}

// errorBody is the shape of an error answer, and of a bulk item's error.
type errorBody struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

// isType reports whether err is an Elasticsearch error of type typ.
func isType(err error, typ string) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Type == typ
}

// do runs req and decodes a 2xx answer into out (when not nil). A failed
// round trip, 429 or 5xx is an EUNAVAILABLE error; any other error answer
// is an *apiError.
func (c *Client) do(ctx context.Context, req esapi.Request, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	res, err := req.Do(ctx, c.es)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return err // the caller gave up: not the cluster's fault
		}
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
	defer res.Body.Close()
	if res.IsError() {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		var eb struct {
			Error json.RawMessage `json:"error"`
		}
		ae := &apiError{Status: res.StatusCode}
		if json.Unmarshal(body, &eb) == nil && len(eb.Error) > 0 {
			var d errorBody
			if json.Unmarshal(eb.Error, &d) == nil {
				ae.Type, ae.Reason = d.Type, d.Reason
			} else {
				ae.Reason = string(eb.Error) // e.g. a HEAD request's bare string
			}
		}
		if ae.Status == http.StatusTooManyRequests || ae.Status >= 500 {
			return fmt.Errorf("%w: %w", errUnavailable, ae)
		}
		return ae
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}
