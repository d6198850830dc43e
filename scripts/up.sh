#!/usr/bin/env bash
# Brings the local stack to a working state and runs every role in one
# process: migrations, a demo tenant `demo` on demo.localhost with a staff
# user, then `saas dev`. Safe to run again: existing data is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/services.sh env)"
saas=./bin/saas

DEMO_EMAIL=${DEMO_EMAIL:-staff@demo.localhost}
DEMO_PASSWORD=${DEMO_PASSWORD:-demo-password}

"$saas" migrate --shared
"$saas" migrate
if ! "$saas" tenant list | awk 'NR > 1 {print $1}' | grep -qx demo; then
  "$saas" tenant create --schema demo --name "Demo" --domain demo.localhost
fi
# Exit code 3 is "already exists": the demo user from an earlier run.
"$saas" user create --tenant demo --email "$DEMO_EMAIL" --password "$DEMO_PASSWORD" --staff || [ $? -eq 3 ]

port=${HTTP_ADDR:-:8080}
port=${port##*:}
cat <<MSG

  Stack is up.
    health:     http://localhost:${port}/health/
    readiness:  http://localhost:${port}/ready
    demo tenant http://demo.localhost:${port}/  (staff user ${DEMO_EMAIL} / ${DEMO_PASSWORD})

  Running every role in one process (Ctrl-C to stop).

MSG
exec "$saas" dev
