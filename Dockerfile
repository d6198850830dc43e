# syntax=docker/dockerfile:1
#
# The single `saas` binary that runs every role (api, push, relay, workers,
# migrate, operator commands). Build: docker build -t saas .
# docker-compose.yml builds it once and runs each role with its own command.

# ---- build stage -----------------------------------------------------------
FROM golang:1.26 AS build
WORKDIR /src

# Dependencies first, in their own layer, so that editing Go code does not
# invalidate the module download.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
# CGO off: a fully static binary that runs on distroless/static (no libc).
# -trimpath keeps local paths out of the binary and stack traces.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /saas ./cmd/saas

# ---- web client ------------------------------------------------------------
FROM node:20 AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

# ---- runtime stage ---------------------------------------------------------
# distroless/static: CA certificates, tzdata and /etc/passwd only; no shell.
# The :nonroot tag runs as uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /saas /saas
COPY --from=web /web/dist /web
ENV WEB_DIR=/web
USER nonroot:nonroot
# The API's default HTTP_ADDR is :8080.
EXPOSE 8080
ENTRYPOINT ["/saas"]
