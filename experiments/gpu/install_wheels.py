"""Install the wheels of `make gpu-wheels` into a folder, skipping every distribution this
Python already has (so nothing the machine ships is shadowed by another version), except
`UPGRADED` ones older than the wheel (backward compatible, and newer ones are required).

    python experiments/gpu/install_wheels.py experiments/gpu/wheels .gpu-deps

Then ``PYTHONPATH=.gpu-deps:. python experiments/gpu/check.py ...`` (`make gpu-check`).
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

#: Installed over an older version: pydantic (albumentations) needs a recent typing_extensions.
UPGRADED = ("typing_extensions",)


def distribution(wheel: Path) -> str:
    """The distribution a wheel file installs (its name before the first dash)."""
    return wheel.name.split("-", 1)[0]


def older(installed: str, wheel: Path) -> bool:
    from packaging.version import Version

    return Version(installed) < Version(wheel.name.split("-")[1])


def main() -> None:
    wheels_dir, target = Path(sys.argv[1]), Path(sys.argv[2])
    wheels = sorted(wheels_dir.glob("*.whl"))
    if not wheels:
        sys.exit(f"gpu-check: no wheels in {wheels_dir}: run `make gpu-wheels` where pip works")
    missing = []
    for wheel in wheels:
        name = distribution(wheel)
        try:
            have = version(name)
        except PackageNotFoundError:
            missing.append(wheel)
            continue
        if name in UPGRADED and older(have, wheel):
            print(f"upgrade {name} {have}")
            missing.append(wheel)
        else:
            print(f"have {name} {have}")
    if missing:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet",
             "--target", str(target), *map(str, missing)],
            check=True,
        )  # fmt: skip
    print(f"installed {len(missing)} of {len(wheels)} wheels into {target}")


if __name__ == "__main__":
    main()
