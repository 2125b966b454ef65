#!/usr/bin/env bash
# Builds alphavol's image (`make image`): prepares the machine (deploy/podman-setup.sh), puts
# every wheel the image needs in build/wheels (alphavol's dependencies at requirements.txt's
# versions, and hatchling to build alphavol itself), then builds the Containerfile, which
# installs from those wheels only. BASE, IMAGE, ENGINE: see deploy/engine.sh.
set -euo pipefail
. "$(dirname "$0")/engine.sh"
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}

"$ROOT/deploy/podman-setup.sh"
cd "$ROOT"

# The host's pip reaches the package index as this machine configures it; the build does not.
mapfile -t deps < <("$PYTHON" -c 'import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))
print("\n".join(project["project"]["dependencies"] + project["build-system"]["requires"]))')
rm -rf build/wheels
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check -c requirements.txt \
    -w build/wheels "${deps[@]}"
wheels_python=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

say "building $IMAGE from $BASE with $ENGINE"
"$ENGINE" build --network=host --build-arg BASE="$BASE" \
    --build-arg WHEELS_PYTHON="$wheels_python" -f Containerfile -t "$IMAGE" .
