#!/usr/bin/env bash
# Brings the local stack to a working state and runs every role in one
# process: the web client (web/dist, when npm is there), migrations, a demo
# tenant `demo` on demo.localhost with a staff user, a platform superuser,
# then `saas dev`. Safe to run again: existing data is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/services.sh env)"
saas=./bin/saas

DEMO_EMAIL=${DEMO_EMAIL:-staff@demo.localhost}
DEMO_PASSWORD=${DEMO_PASSWORD:-demo-password}
ADMIN_EMAIL=${ADMIN_EMAIL:-admin@platform.localhost}
ADMIN_PASSWORD=${ADMIN_PASSWORD:-admin-password}

# The web client: installed and built again only when its sources changed.
if command -v npm >/dev/null 2>&1; then
  if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
    (cd web && npm ci --no-audit --no-fund)
  fi
  if [ ! -f web/dist/index.html ] || [ -n "$(find web/src web/public web/index.html web/vite.config.ts web/package-lock.json -newer web/dist/index.html | head -1)" ]; then
    (cd web && npm run build)
  fi
else
  echo "npm not found: the web client is not built (install Node 20.19+ for it); the API runs without it." >&2
fi

"$saas" migrate --shared
"$saas" migrate
if ! "$saas" tenant list | awk 'NR > 1 {print $1}' | grep -qx demo; then
  "$saas" tenant create --schema demo --name "Demo" --domain demo.localhost
fi
# The demo tenant's search index is rebuilt from the database: cheap for
# the demo, and it keeps an index made by an older version (documents of
# another shape) from hiding the products.
"$saas" reindex --tenant demo --from db
# Exit code 3 is "already exists": the demo user from an earlier run.
"$saas" user create --tenant demo --email "$DEMO_EMAIL" --password "$DEMO_PASSWORD" --staff || [ $? -eq 3 ]
"$saas" superuser create --email "$ADMIN_EMAIL" --password "$ADMIN_PASSWORD" || [ $? -eq 3 ]

port=${HTTP_ADDR:-:8080}
port=${port##*:}
cat <<MSG

  Stack is up.
    health:     http://localhost:${port}/health/
    readiness:  http://localhost:${port}/ready
    demo tenant http://demo.localhost:${port}/  (staff user ${DEMO_EMAIL} / ${DEMO_PASSWORD})
    platform    http://localhost:${port}/  (superuser ${ADMIN_EMAIL} / ${ADMIN_PASSWORD})
  Open either in a browser and sign in with the account shown.

  Running every role in one process (Ctrl-C to stop).

MSG
exec "$saas" dev
