"""Uninstall from this Python environment every distribution `tienda` does not need to run.

requirements.lock pins the runtime and the development dependencies together (with
hashes), so the image's builder installs all of it, installs tienda, then runs this to
drop pytest, ruff, mypy and the rest: what stays is the closure of tienda's own
requirements, extras included (uvicorn[standard], sqlalchemy[asyncio]), plus pip.

    python prune_dev_packages.py            uninstall what is not needed
    python prune_dev_packages.py --dry-run  only print what would stay and what would go
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution, distributions

try:
    from packaging.requirements import Requirement
except ImportError:  # pragma: no cover - pip always vendors it
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]

ALWAYS_KEEP = frozenset({"pip"})


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure(root: str = "tienda") -> set[str]:
    """Canonical names of `root` and everything it requires to run, transitively."""
    needed: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    pending: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    while pending:
        name, extras = pending.pop()
        if (canonical(name), extras) in seen:
            continue
        seen.add((canonical(name), extras))
        try:
            dist = distribution(name)
        except PackageNotFoundError as exc:
            raise SystemExit(f"{name} is required but not installed: the environment is incomplete") from exc
        needed.add(canonical(dist.metadata["Name"]))
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is not None:
                environments = [{"extra": extra} for extra in sorted(extras)] or [{"extra": ""}]
                if not any(requirement.marker.evaluate(env) for env in environments):
                    continue
            pending.append((requirement.name, frozenset(requirement.extras)))
    return needed


def installed() -> set[str]:
    return {canonical(dist.metadata["Name"]) for dist in distributions() if dist.metadata["Name"]}


def main(argv: list[str]) -> int:
    keep = runtime_closure() | ALWAYS_KEEP
    remove = sorted(installed() - keep)
    if "--dry-run" in argv:
        print("keep:", " ".join(sorted(keep)))
        print("remove:", " ".join(remove))
        return 0
    if remove:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", *remove], check=True)  # noqa: S603
    print(f"kept {len(keep)} distributions, removed {len(remove)}: {' '.join(remove)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
