#!/usr/bin/env bash
# Validates the deployment files; CI runs it. Installs nothing: on Debian 12 the
# tools come from the packages
#   docker-compose (or Docker's compose plugin), prometheus (promtool), python3-yaml
# A missing tool is a failure, not a skip.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failed=()
ran=()

# run <name> <command...>: runs one validator, records the outcome.
run() {
  local name=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then
    ran+=("$name")
    echo "ok    $name"
  else
    failed+=("$name")
    echo "FAIL  $name"
    sed 's/^/      /' "$tmp/out"
  fi
}

missing() {
  failed+=("$1")
  echo "FAIL  $1: $2"
}

# --- docker-compose.yml -------------------------------------------------------
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  compose=()
fi
if ((${#compose[@]})); then
  # An empty env file keeps a developer's .env out of the result. The required
  # variables get placeholders; the second check proves compose refuses to run
  # without SECRETS_KEY.
  : >"$tmp/empty.env"
  label="${compose[*]} config -q"
  compose+=(--env-file "$tmp/empty.env" -f docker-compose.yml)
  run "compose file ($label)" \
    env SECRETS_KEY=validate ADMIN_PASSWORD=validate "${compose[@]}" config -q
  requires_secrets_key() {
    local out
    if out=$(env -u SECRETS_KEY ADMIN_PASSWORD=validate "${compose[@]}" config -q 2>&1); then
      echo "compose accepted the file without SECRETS_KEY"
      return 1
    fi
    grep -q 'SECRETS_KEY' <<<"$out" || { echo "$out"; return 1; }
  }
  run "compose requires SECRETS_KEY" requires_secrets_key
else
  missing "compose file" "neither 'docker compose' nor docker-compose is installed (Debian: docker-compose)"
fi

# --- Prometheus ---------------------------------------------------------------
if command -v promtool >/dev/null 2>&1; then
  run "prometheus config (promtool check config)" promtool check config deploy/prometheus/prometheus.yml
else
  missing "prometheus config" "promtool is not installed (Debian: prometheus)"
fi

# --- collector config, Grafana, Dockerfiles -------------------------------------
python=
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [[ -n $python ]]; then
  run "otel collector config, Grafana provisioning and dashboard metric names, Dockerfiles (validate_configs.py)" \
    "$python" deploy/validate_configs.py "$root" "$tmp/dashboard-rules.yml"
  if [[ -s $tmp/dashboard-rules.yml ]] && command -v promtool >/dev/null 2>&1; then
    run "dashboard PromQL syntax (promtool check rules)" promtool check rules "$tmp/dashboard-rules.yml"
  fi
else
  missing "otel collector config, Grafana dashboards" "no python3 with the yaml module (Debian: python3-yaml)"
fi

echo
if ((${#failed[@]})); then
  echo "deploy/validate.sh: ${#failed[@]} check(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "deploy/validate.sh: all ${#ran[@]} checks passed"
