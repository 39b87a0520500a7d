"""Checks of the deployment files that no packaged tool makes; run by deploy/validate.sh.

  python3 deploy/validate_configs.py <repo root> <rules file to write>

- the OpenTelemetry collector config: YAML, and every pipeline names only
  receivers/processors/exporters the file defines;
- Grafana provisioning YAML, and every dashboard JSON: unique panel ids, the
  provisioned Prometheus datasource, and PromQL that references only the
  metrics RunnerHub exports (or standard Prometheus/prom-client ones). The
  panels' expressions are also written as recording rules to the given file,
  so that `promtool check rules` can check their syntax;
- one Dockerfile per service, built by build-service.sh for that service and
  exposing the port Prometheus scrapes it on.
"""

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(sys.argv[1])
RULES_OUT = Path(sys.argv[2])
DEPLOY = ROOT / "deploy"

errors: list[str] = []


def error(where: Path | str, message: str) -> None:
    where = where.relative_to(ROOT) if isinstance(where, Path) else where
    errors.append(f"{where}: {message}")


def load_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        error(path, f"not valid YAML: {exc}")
        return None


# --- metrics a dashboard may use --------------------------------------------

def histogram(name: str) -> set[str]:
    return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}


RUNNERHUB_METRICS = {
    "runnerhub_bus_requests_total",
    "runnerhub_http_requests_total",
    *histogram("runnerhub_bus_request_duration_seconds"),
    *histogram("runnerhub_http_request_duration_seconds"),
}
# prom-client 15 collectDefaultMetrics() without a prefix.
PROM_CLIENT_DEFAULTS = {
    "process_cpu_user_seconds_total", "process_cpu_system_seconds_total", "process_cpu_seconds_total",
    "process_start_time_seconds", "process_resident_memory_bytes", "process_virtual_memory_bytes",
    "process_heap_bytes", "process_open_fds", "process_max_fds",
    "nodejs_eventloop_lag_seconds", "nodejs_eventloop_lag_min_seconds", "nodejs_eventloop_lag_max_seconds",
    "nodejs_eventloop_lag_mean_seconds", "nodejs_eventloop_lag_stddev_seconds",
    "nodejs_eventloop_lag_p50_seconds", "nodejs_eventloop_lag_p90_seconds", "nodejs_eventloop_lag_p99_seconds",
    "nodejs_active_resources", "nodejs_active_resources_total", "nodejs_active_handles",
    "nodejs_active_handles_total", "nodejs_active_requests", "nodejs_active_requests_total",
    "nodejs_heap_size_total_bytes", "nodejs_heap_size_used_bytes", "nodejs_external_memory_bytes",
    "nodejs_heap_space_size_total_bytes", "nodejs_heap_space_size_used_bytes",
    "nodejs_heap_space_size_available_bytes", "nodejs_version_info",
    *histogram("nodejs_gc_duration_seconds"),
}
# Series Prometheus writes for every scrape.
PROMETHEUS_STANDARD = {
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added",
}
ALLOWED_METRICS = RUNNERHUB_METRICS | PROM_CLIENT_DEFAULTS | PROMETHEUS_STANDARD

PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "start", "end",
}


def substitute_variables(expr: str) -> str:
    """Replace Grafana variables with values PromQL accepts."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}", "5m", expr)
    expr = re.sub(r"\$\{[^}]*\}|\[\[[^\]]*\]\]|\$\w+", ".*", expr)
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (what is left once strings, label
    matchers, ranges, grouping clauses and function calls are taken out)."""
    names = set(re.findall(r'__name__\s*=~?\s*"([^"]*)"', expr))
    expr = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    expr = re.sub(r"\{[^{}]*\}", " ", expr)
    expr = re.sub(r"\[[^\[\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", expr)
    for match in re.finditer(r"(?<![\w:.])[A-Za-z_:][\w:]*", expr):
        name = match.group(0)
        if name in PROMQL_KEYWORDS or re.match(r"\s*\(", expr[match.end():]):
            continue
        names.add(name)
    return names


# --- OpenTelemetry collector -------------------------------------------------

def check_otel_collector() -> None:
    path = DEPLOY / "otel-collector" / "config.yaml"
    config = load_yaml(path)
    if not isinstance(config, dict):
        if config is not None:
            error(path, "expected a mapping at the top level")
        return
    pipelines = (config.get("service") or {}).get("pipelines") or {}
    if not pipelines:
        error(path, "service.pipelines is empty")
    for name, pipeline in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            defined = config.get(kind) or {}
            for component in (pipeline or {}).get(kind) or []:
                if component not in defined:
                    error(path, f"pipeline {name} uses {kind[:-1]} {component!r}, which is not defined")
        for kind in ("receivers", "exporters"):
            if not (pipeline or {}).get(kind):
                error(path, f"pipeline {name} has no {kind}")


# --- Grafana -------------------------------------------------------------------

def provisioned_datasource_uids() -> set[str]:
    uids = set()
    for path in sorted((DEPLOY / "grafana" / "provisioning").rglob("*.y*ml")):
        config = load_yaml(path)
        if not isinstance(config, dict):
            if config is not None:
                error(path, "expected a mapping at the top level")
            continue
        for source in config.get("datasources") or []:
            if source.get("type") == "prometheus" and source.get("uid"):
                uids.add(source["uid"])
        for provider in config.get("providers") or []:
            if not (provider.get("options") or {}).get("path"):
                error(path, f"dashboard provider {provider.get('name')!r} has no options.path")
    if not uids:
        error("deploy/grafana/provisioning", "no Prometheus datasource with a uid is provisioned")
    return uids


def all_panels(panels):
    for panel in panels or []:
        yield panel
        yield from all_panels(panel.get("panels"))


def check_expr(path: Path, where: str, expr: str, rules: list) -> None:
    expr = substitute_variables(expr)
    unknown = sorted(metric_names(expr) - ALLOWED_METRICS)
    if unknown:
        error(path, f"{where}: unknown metric(s) {', '.join(unknown)} in: {expr}")
    # promtool names the failing rule: make the name say where the query is.
    slug = re.sub(r"\W+", "_", f"{path.stem} {where.split(chr(39))[0]}").strip("_")
    rules.append({"record": f"dashboard:{slug}:{len(rules) + 1}", "expr": expr})


def check_dashboards(datasource_uids: set[str]) -> list:
    rules: list = []
    files = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
    if not files:
        error("deploy/grafana/dashboards", "no dashboard JSON files")
    for path in files:
        try:
            dashboard = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            error(path, f"not valid JSON: {exc}")
            continue
        if not dashboard.get("uid") or not dashboard.get("title"):
            error(path, "dashboard needs a uid and a title")
        ids = [p.get("id") for p in all_panels(dashboard.get("panels"))]
        if len(ids) != len(set(ids)):
            error(path, "panel ids are not unique")

        for variable in (dashboard.get("templating") or {}).get("list") or []:
            query = variable.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            if variable.get("type") == "query" and isinstance(query, str):
                call = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*\w+\s*\)\s*", query)
                if call:
                    check_expr(path, f"variable {variable.get('name')}", call.group(1), rules)
                elif not re.fullmatch(r"\s*label_values\(\s*\w+\s*\)\s*", query):
                    check_expr(path, f"variable {variable.get('name')}", query, rules)

        for panel in all_panels(dashboard.get("panels")):
            where = f"panel {panel.get('id')} {panel.get('title')!r}"
            if panel.get("type") == "row":
                continue
            targets = panel.get("targets") or []
            if not targets:
                error(path, f"{where} has no queries")
            for target in targets:
                datasource = target.get("datasource") or panel.get("datasource") or {}
                uid = datasource.get("uid") if isinstance(datasource, dict) else datasource
                if uid not in datasource_uids:
                    error(path, f"{where}: datasource {uid!r} is not a provisioned Prometheus datasource")
                if not target.get("expr"):
                    error(path, f"{where} target {target.get('refId')}: empty expr")
                    continue
                check_expr(path, f"{where} target {target.get('refId')}", target["expr"], rules)
    return rules


# --- Dockerfiles ---------------------------------------------------------------

def scrape_ports() -> dict[str, int]:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml") or {}
    ports = {}
    for job in config.get("scrape_configs") or []:
        for sd in job.get("dns_sd_configs") or []:
            ports[job["job_name"]] = sd.get("port")
        for static in job.get("static_configs") or []:
            for target in static.get("targets") or []:
                ports[job["job_name"]] = int(target.rsplit(":", 1)[1])
    return ports


def check_dockerfiles() -> None:
    ports = scrape_ports()
    services = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "package.json").exists())
    for service in services:
        path = DEPLOY / service / "Dockerfile"
        if not path.exists():
            error(path, f"missing: every service needs an image")
            continue
        text = path.read_text()
        if not re.search(rf"^RUN bash deploy/scripts/build-service\.sh {re.escape(service)}\b", text, re.M):
            error(path, f"does not build {service} with deploy/scripts/build-service.sh")
        exposed = [int(p) for p in re.findall(r"^EXPOSE\s+(\d+)", text, re.M)]
        if ports.get(service) not in exposed:
            error(path, f"EXPOSE {exposed} does not include the port Prometheus scrapes ({ports.get(service)})")
        if not re.search(r'^CMD \["node", "dist/main\.js"\]', text, re.M):
            error(path, 'CMD is not ["node", "dist/main.js"]')
        if not re.search(r"^USER (?!root\b)\S+", text, re.M):
            error(path, "runtime stage does not switch to a non-root USER")


check_otel_collector()
rules = check_dashboards(provisioned_datasource_uids())
check_dockerfiles()
RULES_OUT.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, sort_keys=False))

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"{len(rules)} dashboard queries use only known metrics")
