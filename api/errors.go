package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/domain"
)

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[string]int{
	domain.EINVALID:      http.StatusUnprocessableEntity,
	domain.ENOTFOUND:     http.StatusNotFound,
	domain.ECONFLICT:     http.StatusConflict,
	domain.EUNAUTHORIZED: http.StatusUnauthorized,
	domain.EFORBIDDEN:    http.StatusForbidden,
	domain.EUNAVAILABLE:  http.StatusServiceUnavailable,
	domain.ERATELIMITED:  http.StatusTooManyRequests,
	domain.ESUSPENDED:    http.StatusForbidden,
	domain.EINTERNAL:     http.StatusInternalServerError,
}

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Details map[string]string `json:"details,omitempty"`
}

// httpCodes names Echo's own errors (routing, body limit, bad JSON) in the
// error shape's vocabulary.
var httpCodes = map[int]string{
	http.StatusBadRequest:            "bad_request",
	http.StatusNotFound:              domain.ENOTFOUND,
	http.StatusRequestTimeout:        "request_timeout",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusRequestEntityTooLarge: "too_large",
	http.StatusTooManyRequests:       domain.ERATELIMITED,
	http.StatusUnauthorized:          domain.EUNAUTHORIZED,
	http.StatusForbidden:             domain.EFORBIDDEN,
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusUpgradeRequired:       "upgrade_required",
	http.StatusServiceUnavailable:    domain.EUNAVAILABLE,
}

func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, body := s.errorResponse(c, err)
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		err = c.JSON(status, body)
	}
	if err != nil {
		s.log.ErrorContext(c.Request().Context(), "write error response", slog.Any("error", err))
	}
}

func (s *Server) errorResponse(c echo.Context, err error) (int, errorBody) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code, ok := httpCodes[he.Code]
		if !ok {
			code = "error"
		}
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && he.Code < 500 {
			msg = m
		}
		if he.Code >= 500 {
			s.logInternal(c, err)
		}
		return he.Code, errorBody{errorDetail{Code: code, Message: msg}}
	}
	code := domain.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if code == domain.EINTERNAL {
		s.logInternal(c, err)
	}
	if code == domain.EUNAVAILABLE {
		s.log.WarnContext(c.Request().Context(), "dependency unavailable", slog.Any("error", err))
	}
	var de *domain.Error
	if errors.As(err, &de) && de.RetryAfter > 0 {
		// Whole seconds, rounded up: "0" would invite an immediate retry.
		c.Response().Header().Set("Retry-After", strconv.Itoa(int((de.RetryAfter+time.Second-1)/time.Second)))
	}
	return status, errorBody{errorDetail{Code: code, Message: domain.ErrorMessage(err), Details: domain.ErrorDetails(err)}}
}

func (s *Server) logInternal(c echo.Context, err error) {
	s.log.ErrorContext(c.Request().Context(), "internal error",
		slog.String("method", c.Request().Method), slog.String("path", c.Path()), slog.Any("error", err))
}
