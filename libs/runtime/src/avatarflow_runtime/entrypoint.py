"""The container image's entry point: run the service the image was built for.

One Dockerfile builds every service (``--build-arg SERVICE=...``); exec-form ``ENTRYPOINT`` cannot
read a build argument, so the image records it as ``AVATARFLOW_IMAGE_SERVICE`` and this module runs
``avatarflow_<service>`` as ``python -m`` would (the interpreter stays PID 1 and gets the signals).
``--warm-up`` runs the service's build-time warm-up where it has one (the matting core compiles
its numba kernels into the image's cache) and nothing otherwise.
"""

from __future__ import annotations

import importlib
import os
import runpy
import sys

SERVICES = ("ingest", "validator", "matting", "animator", "notifier")


def image_service(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    service = environ.get("AVATARFLOW_IMAGE_SERVICE", "")
    if service not in SERVICES:
        raise SystemExit(f"AVATARFLOW_IMAGE_SERVICE must be one of {', '.join(SERVICES)}, not {service!r}")
    return service


def warm_up(service: str) -> bool:
    """Run ``avatarflow_<service>.core.warm_up`` if the service has one; says whether it did."""
    try:
        core = importlib.import_module(f"avatarflow_{service}.core")
    except ModuleNotFoundError:
        return False
    hook = getattr(core, "warm_up", None)
    if hook is None:
        return False
    hook()
    return True


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    service = image_service()
    if args == ["--warm-up"]:
        print(f"warm-up for {service}: {'done' if warm_up(service) else 'none needed'}")
        return
    if args:
        raise SystemExit(f"usage: python -m avatarflow_runtime.entrypoint [--warm-up] (got {args})")
    runpy.run_module(f"avatarflow_{service}", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
