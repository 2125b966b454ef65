# Sourced by the image scripts (deploy/*.sh): which container engine, and the defaults.
#   ENGINE  podman or docker (default: podman if installed, else docker if its daemon
#           answers, else podman, which deploy/podman-setup.sh installs)
#   BASE    the image to build FROM (default: DEBIAN_BASE, built from Debian's packages)
#   IMAGE   the tag of alphavol's image

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEBIAN_BASE=localhost/debian-python:bookworm
BASE=${BASE:-$DEBIAN_BASE}
IMAGE=${IMAGE:-localhost/alphavol:latest}

if [ -z "${ENGINE:-}" ]; then
    if command -v podman >/dev/null 2>&1; then
        ENGINE=podman
    elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        ENGINE=docker
    else
        ENGINE=podman
    fi
fi
if [ "$ENGINE" = podman ]; then
    export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/deploy/containers.conf}
fi

say() { echo "alphavol image: $*" >&2; }

image_exists() { "$ENGINE" image inspect "$1" >/dev/null 2>&1; }
