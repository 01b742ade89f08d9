"""The compose stack in docker/ (no Docker engine here): read as compose reads it, with
the checks `docker compose config` makes (services depended on exist, named volumes are
declared), the ones it cannot make (the settings are Lantern's, the bind-mounted files
exist, Prometheus scrapes every Lantern process, nginx balances both APIs, the dashboard
reads metrics Lantern exports) and, where a compose binary is on PATH, its own
``config -q``, which validates the file against the Compose Specification schema."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import Metrics
from app.settings import Settings, describe_settings

DOCKER = Path(__file__).parents[2] / "docker"
COMPOSE = DOCKER / "compose.yaml"
DASHBOARD = DOCKER / "grafana" / "provisioning" / "dashboards" / "lantern.json"
#: What the stack needs from its user (`${VAR:?...}`); any value will do here.
REQUIRED = {"LANTERN_ADMIN_PASSWORD": "a-long-admin-password"}
#: Written in parallel by the answer cache's change (a Counter labelled result=hit|miss):
#: the dashboard's cache hit rate reads it; remove this once app/metrics.py has it.
PENDING_METRICS = {"lantern_answer_cache_total": {"result"}}
METRIC = r"\blantern_\w+"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, Any]:
    return compose()["services"]


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` against ``env``."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"{name} is required: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def lantern_services() -> dict[str, dict[str, Any]]:
    """The services that run the Lantern image: every one with LANTERN_ settings."""
    return {
        name: s
        for name, s in services().items()
        if any(k.startswith("LANTERN_") for k in s.get("environment") or {})
    }


def lantern_env(service: dict[str, Any]) -> dict[str, str]:
    return {
        k: interpolate(str(v), REQUIRED)
        for k, v in service["environment"].items()
        if k.startswith("LANTERN_")
    }


def command(service: dict[str, Any]) -> list[str]:
    return [str(a) for a in service.get("command") or []]


def test_vllm_serves_qwen_with_runtime_lora_loading_behind_the_gpu_profile() -> None:
    stack = services()
    vllm = stack["vllm"]
    args = vllm["command"]
    assert "--model=Qwen/Qwen2.5-7B-Instruct" in args
    assert "--enable-lora" in args
    assert any(a.startswith("--max-loras=") for a in args)
    assert vllm["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    # Without a GPU, `docker compose up` must not start it.
    assert vllm["profiles"] == ["gpu"]
    # vLLM reads the adapters where Lantern wrote them: the same volume, the same path.
    for name in lantern_services():
        lantern_data = next(v for v in stack[name]["volumes"] if v.startswith("lantern-data:"))
        assert any(v.startswith(lantern_data) for v in vllm["volumes"])
    # The GPU-less stack is complete: nothing else hides behind a profile.
    assert [n for n, s in stack.items() if "profiles" in s] == ["vllm"]


def test_the_stack_runs_two_apis_and_two_workers_over_shared_services() -> None:
    stack = lantern_services()
    assert sorted(n for n in stack if command(stack[n])[:1] == ["serve"]) == ["api-1", "api-2"]
    workers = sorted(n for n in stack if command(stack[n])[:1] == ["worker"])
    assert workers == ["worker-1", "worker-2"]
    assert command(stack["init"]) == ["db", "upgrade", "--indexes"]
    for name in [n for n in stack if n != "init"]:
        # Migrations and the Milvus collections exist before any of them starts.
        assert stack[name]["depends_on"]["init"] == {"condition": "service_completed_successfully"}


def test_every_lantern_variable_is_a_real_setting_and_they_let_processes_share_the_indexes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = {env for env, _, _ in describe_settings()}
    stack = services()
    for name, service in lantern_services().items():
        env = lantern_env(service)
        # Settings ignore unknown LANTERN_ names: a misspelt one would be silently lost.
        assert set(env) <= known, f"{name}: not settings: {sorted(set(env) - known)}"
        for key in [k for k in os.environ if k.startswith("LANTERN_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        s = Settings(_env_file=None)  # type: ignore[call-arg]
        s.check_secrets()  # what `lantern serve` does first (LANTERN_ENV=prod)
        # `lantern serve` refuses celery over index files: both indexes in the Milvus server.
        assert not s.single_writer_indexes
        assert s.jobs.kind == "celery"
        assert s.llm.resolved_kind == "extractive"  # until LANTERN_LLM_URL points at vLLM
        # Every process reaches the services by their names in this file.
        assert s.database_url.split("@")[1].split("/")[0] in stack
        assert s.jobs.celery.broker_url.split("//")[1].split(":")[0] in stack
        # Both APIs count one budget per user, and one count of failed log-ins.
        assert (s.server.rate_limit_storage_url or "").split("//")[1].split(":")[0] in stack
        assert s.milvus_uri.split("//")[1].split(":")[0] in stack
        assert str(s.data_dir) == "/data"
        assert any(v.startswith("lantern-data:/data") for v in service["volumes"])


def test_services_depended_on_volumes_and_mounted_files_exist() -> None:
    spec = compose()
    stack = spec["services"]
    declared = set(spec["volumes"])
    for name, service in stack.items():
        depends = service.get("depends_on") or []
        for target in depends:
            assert target in stack, f"{name} depends on {target}, which is not a service"
            assert "profiles" not in stack[target], f"{name} needs {target} from a profile"
        for volume in service.get("volumes") or []:
            source = interpolate(volume, {}).split(":")[0]
            if source.startswith((".", "/", "~")):
                if source.startswith("."):
                    assert (DOCKER / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_prometheus_scrapes_every_lantern_process_on_its_metrics_port() -> None:
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    targets = {
        t
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for t in static["targets"]
    }
    expected = set()
    for name, service in lantern_services().items():
        args = command(service)
        if args[:1] == ["serve"]:
            expected.add(f"{name}:{lantern_env(service)['LANTERN_SERVER__PORT']}")
        elif args[:1] == ["worker"]:
            expected.add(f"{name}:{args[args.index('--metrics-port') + 1]}")
    assert len(expected) == 4
    assert targets == expected


def test_one_port_balances_both_apis_and_streams_unbuffered() -> None:
    proxy = services()["proxy"]
    conf = (DOCKER / "nginx" / "lantern.conf").read_text()
    apis = {
        f"{n}:{lantern_env(s)['LANTERN_SERVER__PORT']}"
        for n, s in lantern_services().items()
        if command(s)[:1] == ["serve"]
    }
    for upstream in re.findall(r"upstream \w+ \{(.*?)\}", conf, re.S):
        assert set(re.findall(r"server (\S+?)[ ;]", upstream)) == apis
    assert "proxy_buffering off;" in conf  # SSE answers stream token by token
    # Log-in limits and the audit see each client, not the proxy: the APIs believe the
    # address nginx names, and nginx names the one it saw (a client's own header is dropped).
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    for name in {a.split(":")[0] for a in apis}:
        assert lantern_env(services()[name]).get("LANTERN_SERVER__FORWARDED_ALLOW_IPS")
    assert re.search(r"location = /metrics \{\s*return 404;", conf)  # not public
    assert len(proxy["ports"]) == 1
    assert not any("ports" in s for s in lantern_services().values())


def exported() -> dict[str, set[str]]:
    """Every series name Lantern's registry exposes, with its label names (each kind of
    observation made once, so that labelled series appear)."""
    m = Metrics(lambda: {"queued": 1})
    timings = {"ttft_s": 0.1, "total_s": 1.0, "retrieve_s": 0.05}
    m.observe_answer(timings, outcome="answered", tokens=5, version="v1", finish_reason="error")
    m.observe_answer_failure(version="v1", kind="LLMTimeout")
    m.observe_feedback(version="v1", rating=1)
    m.observe_job({"embed": 0.1}, ok=True, pages=2)
    m.requests.labels("GET", "/health", "200").observe(0.01)
    m.errors.labels("api", "ValueError").inc()
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def grouped(query: str) -> list[tuple[set[str], str]]:
    """Each ``by (labels)`` of ``query`` with the expression it aggregates."""
    out = []
    for m in re.finditer(r"by \(([^)]*)\) \(", query):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(query[i], 0)
            i += 1
        out.append(({x.strip() for x in m.group(1).split(",")}, query[m.end() : i - 1]))
    return out


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p["targets"]]


def test_the_dashboard_reads_only_metrics_and_labels_lantern_exports() -> None:
    series = exported() | PENDING_METRICS
    for query in dashboard_queries():
        for name in re.findall(METRIC, query):
            # (A labelled metric shows only once observed: observe it in exported().)
            assert name in series, f"{name} is not exported: {query}"
        for name, selector in re.findall(r"(" + METRIC + r")\{([^}]*)\}", query):
            assert set(re.findall(r"(\w+)\s*[=!]~?", selector)) <= series[name], query
        for labels, inner in grouped(query):
            for name in re.findall(METRIC, inner):
                assert labels <= series[name], f"{name} has no {labels - series[name]}"
    # Per model version wherever the metric has it.
    for query in dashboard_queries():
        for name in re.findall(METRIC, query):
            if "version" in series[name]:
                assert 'version=~"$version"' in query, query


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    queries = dashboard_queries()
    latency = "sum by (le, version) (rate(lantern_answer_seconds_bucket"
    for q in ("0.5", "0.95", "0.99"):
        assert any(f"histogram_quantile({q}, {latency}" in e for e in queries), q
    for metric in (
        "lantern_answer_ttft_seconds_bucket",
        "lantern_answer_errors_total",
        "lantern_answer_tokens_total",
        "lantern_ingestion_queue_depth",
        "lantern_ingestion_pages_total",
        'lantern_answer_cache_total{result="hit"}',
    ):
        assert any(metric in e for e in queries), metric
    board = json.loads(DASHBOARD.read_text())
    datasource = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )["datasources"][0]
    assert {p["datasource"]["uid"] for p in board["panels"]} == {datasource["uid"]}
    assert datasource["url"] == "http://prometheus:9090"


@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]], ids=["cpu", "gpu"])
def test_compose_itself_accepts_the_file(profile: list[str]) -> None:
    binary = next(
        (
            cmd
            for cmd in (["docker", "compose"], ["docker-compose"])
            if shutil.which(cmd[0])
            and subprocess.run([*cmd, "version"], capture_output=True).returncode == 0
        ),
        None,
    )
    if binary is None:
        if os.environ.get("LANTERN_TEST_REQUIRE_DOCKER_COMPOSE") == "1":
            pytest.fail("neither `docker compose` nor `docker-compose` is on PATH")
        pytest.skip("neither `docker compose` nor `docker-compose` is on PATH")
    env = {**os.environ, **REQUIRED}
    done = subprocess.run(
        [*binary, "-f", str(COMPOSE), *profile, "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    # Without the admin password it refuses, naming it.
    env.pop("LANTERN_ADMIN_PASSWORD")
    refused = subprocess.run(
        [*binary, "-f", str(COMPOSE), *profile, "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert refused.returncode != 0
    assert "LANTERN_ADMIN_PASSWORD" in refused.stderr
