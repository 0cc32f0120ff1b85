"""Render the kustomize overlays of deploy/k8s: with `kubectl kustomize` (or `kustomize build`)
when one is installed, else with the small subset of kustomize below, which is all the
overlays use: resources (files and directories), namespace, images, replicas and JSON 6902
patches selected by kind and name. Where both are there, the tests check they agree.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass", "PersistentVolume", "IngressClass"}


def kustomize_command() -> list[str] | None:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


def render_with_tool(directory: Path) -> list[Doc] | None:
    command = kustomize_command()
    if command is None:
        return None
    done = subprocess.run([*command, str(directory)], capture_output=True, text=True, timeout=60, check=True)
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def render_in_python(directory: Path) -> list[Doc]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs: list[Doc] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            docs.extend(render_in_python(path))
        else:
            docs.extend(copy.deepcopy(doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    if "namespace" in kustomization:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    for image in kustomization.get("images", []):
        for doc in docs:
            for container in _containers(doc):
                name, _, _ = container["image"].partition(":")
                if name == image["name"]:
                    tag = image.get("newTag") or container["image"].partition(":")[2]
                    container["image"] = image.get("newName", name) + (f":{tag}" if tag else "")
    for replica in kustomization.get("replicas", []):
        matched = [d for d in docs if d["metadata"]["name"] == replica["name"] and "replicas" in d.get("spec", {})]
        assert matched, f"replicas: no workload named {replica['name']}"
        for doc in matched:
            doc["spec"]["replicas"] = replica["count"]
    for patch in kustomization.get("patches", []):
        target = patch["target"]
        operations = yaml.safe_load(patch["patch"])
        matched = [
            d
            for d in docs
            if d["kind"] == target.get("kind", d["kind"])
            and d["metadata"]["name"] == target.get("name", d["metadata"]["name"])
        ]
        assert matched, f"patch target {target} matches nothing"
        for doc in matched:
            for operation in operations:
                _apply(doc, operation)
    return docs


def _containers(doc: Doc) -> list[Doc]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {}) if "template" in spec else spec
    return [*pod.get("initContainers", []), *pod.get("containers", [])] if isinstance(pod, dict) else []


def _apply(doc: Doc, operation: Doc) -> None:
    """One JSON patch operation (RFC 6902): add, replace or remove."""
    keys = [part.replace("~1", "/").replace("~0", "~") for part in operation["path"].split("/")[1:]]
    parent: Any = doc
    for key in keys[:-1]:
        parent = parent[int(key)] if isinstance(parent, list) else parent[key]
    last = keys[-1]
    op = operation["op"]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if op == "add":
            parent.insert(index, copy.deepcopy(operation["value"]))
        elif op == "replace":
            parent[index] = copy.deepcopy(operation["value"])
        elif op == "remove":
            del parent[index]
        else:
            raise ValueError(f"unsupported JSON patch operation {op}")
        return
    if op in ("replace", "remove") and last not in parent:
        raise KeyError(f"{operation['path']} does not exist")
    if op in ("add", "replace"):
        parent[last] = copy.deepcopy(operation["value"])
    elif op == "remove":
        del parent[last]
    else:
        raise ValueError(f"unsupported JSON patch operation {op}")


def key(doc: Doc) -> tuple[str, str, str]:
    return (doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"])
