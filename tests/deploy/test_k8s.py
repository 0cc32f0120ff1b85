"""The Kubernetes manifests of deploy/k8s: every overlay rendered, every object valid against
the Kubernetes JSON schemas (kubernetes-validate, offline), and the shape the split
deployment needs: per module an API Deployment with probes and limits, its Service and
HorizontalPodAutoscaler, a worker, a migrate Job, its own database; an Ingress that routes
like the nginx gateway; one namespace per environment.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.backends import ON_CI
from tests.deploy.kustomize import Doc, key, render_in_python, render_with_tool
from tests.deploy.routing import DEPLOY, INTERNAL_SAMPLES, SERVICES, gateway_table, owner, routes_of_the_app

K8S = DEPLOY / "k8s"
OVERLAYS = ("staging", "production")
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")
"""The oldest and a recent release that the bundled schemas cover and the manifests must suit."""


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tienda_k8s_generate", K8S / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_rendered: dict[str, list[Doc]] = {}


def rendered(overlay: str) -> list[Doc]:
    """The overlay as kustomize renders it (kubectl when installed, which must agree with the
    Python subset; else the Python subset alone)."""
    if overlay not in _rendered:
        directory = K8S / "overlays" / overlay
        ours = render_in_python(directory)
        theirs = render_with_tool(directory)
        if theirs is not None:
            assert {key(d): d for d in ours} == {key(d): d for d in theirs}, "the Python kustomize subset disagrees"
        _rendered[overlay] = ours
    return _rendered[overlay]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def containers(doc: Doc) -> list[Doc]:
    pod = doc["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def workloads(docs: list[Doc]) -> Iterator[Doc]:
    yield from (d for d in docs if d["kind"] in ("Deployment", "Job"))


def env_of(container: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- the files ---------------------------------------------------------------------------------


def test_base_is_what_the_generator_writes() -> None:
    texts = _generator().rendered()
    on_disk = {path.name: path.read_text() for path in (K8S / "base").glob("*.yaml")}
    assert set(on_disk) == set(texts), "run python deploy/k8s/generate.py"
    stale = [name for name, text in texts.items() if on_disk[name] != text]
    assert stale == [], "base/ is out of date: run python deploy/k8s/generate.py"


def test_the_generators_modules_and_routes_are_the_apps() -> None:
    generator = _generator()
    assert set(generator.MODULES) == set(SERVICES)
    routes = {p + r: s for p in generator.API_PREFIXES for r, s in generator.API_ROUTES.items()}
    assert {**routes, **generator.ROOT_ROUTES} == gateway_table()


def test_every_object_is_valid_against_the_kubernetes_schemas(overlay: str) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        message = "kubernetes-validate is not installed (the dev extra has it; run `make lock` and `make install`)"
        if ON_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    docs = rendered(overlay)
    assert len(docs) > 40
    for version in KUBERNETES_VERSIONS:
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{key(doc)} is invalid for Kubernetes {version}: {exc.message} at {list(exc.path)}")


# -- namespaces and replicas -----------------------------------------------------------------


def test_each_environment_has_a_namespace_of_its_own_holding_everything() -> None:
    namespaces = []
    for overlay in OVERLAYS:
        docs = rendered(overlay)
        [namespace] = [d for d in docs if d["kind"] == "Namespace"]
        name = namespace["metadata"]["name"]
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {name}
        namespaces.append(name)
    assert sorted(namespaces) == ["tienda-production", "tienda-staging"]


def test_production_runs_more_than_staging() -> None:
    def replicas(overlay: str) -> tuple[int, int, int, int]:
        docs = rendered(overlay)
        hpa = find(docs, "HorizontalPodAutoscaler", "orders")["spec"]
        return (
            find(docs, "Deployment", "orders")["spec"]["replicas"],
            hpa["minReplicas"],
            hpa["maxReplicas"],
            find(docs, "Deployment", "orders-worker")["spec"]["replicas"],
        )

    staging, production = replicas("staging"), replicas("production")
    assert all(p > s for p, s in zip(production, staging, strict=True)), (staging, production)
    for overlay in OVERLAYS:
        docs = rendered(overlay)
        for module in SERVICES:
            hpa = find(docs, "HorizontalPodAutoscaler", module)["spec"]
            assert hpa["minReplicas"] <= find(docs, "Deployment", module)["spec"]["replicas"] <= hpa["maxReplicas"]
        # One search index writer, whatever the environment.
        assert find(docs, "Deployment", "search-worker")["spec"]["replicas"] == 1
        assert find(docs, "Deployment", "search-worker")["spec"]["strategy"]["type"] == "Recreate"


def test_images_come_from_the_overlays_registry(overlay: str) -> None:
    images = {c["image"] for d in workloads(rendered(overlay)) for c in containers(d)}
    assert len(images) == 1
    assert images.pop().startswith("registry.example.com/tienda:")


# -- per module ------------------------------------------------------------------------------


def test_every_module_has_an_api_with_probes_a_service_and_an_autoscaler(overlay: str) -> None:
    docs = rendered(overlay)
    for module in SERVICES:
        deployment = find(docs, "Deployment", module)
        [api] = containers(deployment)
        assert api["args"] == ["serve"]
        assert env_of(api)["TIENDA_SERVICE"] == module
        [port] = api["ports"]
        assert (port["name"], port["containerPort"]) == ("http", 8000)
        assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert api["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}

        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        svc = find(docs, "Service", module)
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        assert svc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert [(p["name"], p["targetPort"]) for p in svc["spec"]["ports"]] == [("http", "http")]

        hpa = find(docs, "HorizontalPodAutoscaler", module)
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": module}
        [metric] = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"]["type"] == "Utilization"


def test_every_module_has_a_worker_and_a_migrate_job(overlay: str) -> None:
    docs = rendered(overlay)
    for module in SERVICES:
        [worker] = containers(find(docs, "Deployment", f"{module}-worker"))
        assert worker["args"] == ["worker"]
        assert env_of(worker)["TIENDA_SERVICE"] == module
        assert worker["livenessProbe"]["exec"]["command"] == ["python", "/app/healthcheck.py", "worker"]
        assert "ports" not in worker
        job = find(docs, "Job", f"{module}-migrate")
        [migrate] = containers(job)
        assert migrate["args"] == ["migrate"]
        assert env_of(migrate)["TIENDA_SERVICE"] == module
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    workers = [
        d["metadata"]["name"] for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-worker")
    ]
    assert sorted(workers) == sorted(f"{m}-worker" for m in SERVICES)


def test_every_container_has_requests_and_limits_and_runs_locked_down(overlay: str) -> None:
    for doc in workloads(rendered(overlay)):
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["automountServiceAccountToken"] is False
        for container in containers(doc):
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert set(resources[kind]) == {"cpu", "memory"}, (key(doc), kind)
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/data", "/tmp"} <= mounts, key(doc)


def test_each_module_gets_its_own_database_and_secrets_only_by_reference(overlay: str) -> None:
    docs = rendered(overlay)
    assert [d for d in docs if d["kind"] == "Secret"] == []
    config = find(docs, "ConfigMap", "tienda-config")
    assert not [k for k in config["data"] if any(w in k for w in ("SECRET", "PASSWORD", "TOKEN", "DATABASE_URL"))]
    for doc in workloads(docs):
        for container in containers(doc):
            assert container["envFrom"] == [{"configMapRef": {"name": "tienda-config"}}]
            env = env_of(container)
            module = env["TIENDA_SERVICE"]
            databases = sorted(name for name in env if name.endswith("_DATABASE_URL"))
            assert databases == [f"TIENDA_{module.upper()}_DATABASE_URL"], key(doc)
            for name in (
                *databases,
                "TIENDA_JWT_SECRET",
                "TIENDA_SERVICE_TOKEN",
                "TIENDA_BROKER_URL",
                "TIENDA_REDIS_URL",
            ):
                assert env[name]["secretKeyRef"]["name"] == "tienda-secrets", (key(doc), name)
                assert env[name]["secretKeyRef"]["key"] == name
    # The example lists every key the manifests reference.
    example = {
        line.split("=", 1)[0]
        for line in (K8S / "secrets.example.env").read_text().splitlines()
        if line and not line.startswith("#")
    }
    referenced = {
        ref["key"]
        for doc in workloads(docs)
        for container in containers(doc)
        for var in container.get("env", [])
        if (ref := var.get("valueFrom", {}).get("secretKeyRef"))
    }
    assert referenced == example


def test_every_volume_claim_mounted_exists(overlay: str) -> None:
    docs = rendered(overlay)
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    used = {
        v["persistentVolumeClaim"]["claimName"]
        for d in workloads(docs)
        for v in d["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert used == claims == {"search-index", "catalog-media"}
    # The search API reads the index its worker writes: both mount it.
    for name in ("search", "search-worker"):
        [container] = containers(find(docs, "Deployment", name))
        assert "/data/search-index" in {m["mountPath"] for m in container["volumeMounts"]}


# -- the Ingress -----------------------------------------------------------------------------


def ingress_table(docs: list[Doc]) -> dict[str, str]:
    [ingress] = [d for d in docs if d["kind"] == "Ingress"]
    [rule] = ingress["spec"]["rules"]
    table: dict[str, str] = {}
    for path in rule["http"]["paths"]:
        assert path["pathType"] == "Prefix"
        assert path["backend"]["service"]["port"] == {"name": "http"}
        assert path["path"] not in table
        table[path["path"]] = path["backend"]["service"]["name"]
    return table


def test_the_ingress_routes_the_same_paths_as_the_nginx_gateway(overlay: str) -> None:
    docs = rendered(overlay)
    table = ingress_table(docs)
    assert table == gateway_table()
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    assert set(table.values()) <= services
    # Prefix paths, longest match first: every route of the app reaches its module ...
    wrong = [
        (r.sample, r.module, owner(r.sample, table)) for r in routes_of_the_app() if owner(r.sample, table) != r.module
    ]
    assert wrong == []
    # ... and no path leads to the internal routes.
    assert [path for path in INTERNAL_SAMPLES if owner(path, table) is not None] == []


def test_the_ingress_has_the_gateways_limits_and_its_environments_host(overlay: str) -> None:
    [ingress] = [d for d in rendered(overlay) if d["kind"] == "Ingress"]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/limit-rps"] == "20"
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "6m"
    host = ingress["spec"]["rules"][0]["host"]
    assert ingress["spec"]["tls"][0]["hosts"] == [host]
    config = find(rendered(overlay), "ConfigMap", "tienda-config")
    assert config["data"]["TIENDA_PUBLIC_BASE_URL"] == f"https://{host}"


def test_the_apis_take_traffic_only_from_the_ingress_controller_and_each_other(overlay: str) -> None:
    docs = rendered(overlay)
    policy = find(docs, "NetworkPolicy", "tienda-api")
    selected = policy["spec"]["podSelector"]["matchLabels"]
    for module in SERVICES:
        labels = find(docs, "Deployment", module)["spec"]["template"]["metadata"]["labels"]
        assert selected.items() <= labels.items()
    sources = policy["spec"]["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in sources


def test_secrets_example_and_overlays_exist() -> None:
    for overlay in OVERLAYS:
        assert (K8S / "overlays" / overlay / "namespace.yaml").exists()
    assert Path(K8S / "secrets.example.env").exists()
