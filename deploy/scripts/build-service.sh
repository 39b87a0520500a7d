#!/usr/bin/env bash
# Build-stage helper shared by every deploy/<service>/Dockerfile. Run from the
# workspace root after `pnpm install`:
#
#   deploy/scripts/build-service.sh <service> [--with-rh-db]
#
# Compiles @runnerhub/<service> and the workspace packages it depends on, then
# writes a self-contained production tree (dist/ + production node_modules, with
# workspace packages copied in as built packages) to /out/app.
# --with-rh-db also deploys @runnerhub/db-migrate to /out/rh-db and writes an
# `rh-db` launcher (for /opt/rh-db) to /out/bin: identity's migrations tool.
# OUT_DIR replaces /out, to try the build outside Docker.
set -euo pipefail

service="${1:?usage: build-service.sh <service> [--with-rh-db]}"
with_rh_db=false
[[ "${2:-}" == "--with-rh-db" ]] && with_rh_db=true
pkg="@runnerhub/${service}"
out="${OUT_DIR:-/out}"

die() { echo "build-service: $*" >&2; exit 1; }

filters=(--filter "${pkg}...")
$with_rh_db && filters+=(--filter "@runnerhub/db-migrate...")
# Loose env mode lets the PNPM_CONFIG_* settings of the build image reach the
# `pnpm run` that turbo starts for each task (strict mode drops unlisted vars).
pnpm turbo run build --env-mode=loose "${filters[@]}"

# Workspace packages are copied into the target (not linked), so the tree runs
# without the sources; --offline takes every package from the store filled by
# `pnpm fetch`/`pnpm install`.
deploy() {
  pnpm deploy --filter "$1" --prod --offline "$2"
  find "$2" -name .turbo -type d -prune -exec rm -rf {} +
}

# pnpm deploy copies what a package would publish; a "files" list or an
# .npmignore that left dist/ out would only show at start-up, so check here
# that every workspace package in the tree carries its compiled entry point.
check_tree() {
  node --input-type=module - "$1" <<'JS'
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
const root = process.argv[2];
const seen = new Set();
const missing = [];
function check(dir) {
  const real = realpathSync(dir);
  if (seen.has(real)) return;
  seen.add(real);
  const manifest = JSON.parse(readFileSync(join(real, 'package.json'), 'utf8'));
  const entry = manifest.exports?.['.']?.default ?? manifest.main;
  if (entry && !existsSync(join(real, entry))) missing.push(`${manifest.name}: ${entry}`);
}
function scopes(nodeModules) {
  const scope = join(nodeModules, '@runnerhub');
  if (existsSync(scope)) for (const name of readdirSync(scope)) check(join(scope, name));
}
scopes(join(root, 'node_modules'));
const store = join(root, 'node_modules', '.pnpm');
if (existsSync(store)) for (const entry of readdirSync(store)) scopes(join(store, entry, 'node_modules'));
if (missing.length) {
  console.error(`workspace packages deployed without their build output:\n  ${missing.join('\n  ')}`);
  process.exit(1);
}
console.log(`${root}: ${seen.size} workspace package(s) with build output`);
JS
}

rm -rf "$out"
deploy "$pkg" "$out/app"
[[ -f "$out/app/dist/main.js" ]] || die "$out/app/dist/main.js missing after deploy of $pkg"
check_tree "$out/app"

if $with_rh_db; then
  deploy @runnerhub/db-migrate "$out/rh-db"
  check_tree "$out/rh-db"
  # The launcher points at whatever file db-migrate's manifest names as `rh-db`.
  bin=$(node -e '
    const m = require(process.argv[1]);
    const b = typeof m.bin === "string" ? m.bin : (m.bin || {})["rh-db"];
    if (!b) { console.error("@runnerhub/db-migrate declares no rh-db bin"); process.exit(1); }
    console.log(b);' "$out/rh-db/package.json")
  [[ -f "$out/rh-db/$bin" ]] || die "rh-db entry $bin missing in $out/rh-db"
  mkdir -p "$out/bin"
  printf '#!/bin/sh\nexec node /opt/rh-db/%s "$@"\n' "${bin#./}" > "$out/bin/rh-db"
  chmod 0755 "$out/bin/rh-db"
fi
