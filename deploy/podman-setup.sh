#!/usr/bin/env bash
# Prepares this machine to build alphavol's image (DESIGN.md section 6); idempotent, and a
# second run only checks (about a second):
#   - podman and runc (Debian packages), unless ENGINE=docker or docker is what it has;
#   - mmdebstrap, when BASE is the Debian-built base and that is not there yet;
#   - the Debian-built base itself, localhost/debian-python:bookworm: python3, python3-venv
#     and ca-certificates from Debian's archive (mmdebstrap), imported as an image, for
#     machines that reach no container registry. Rebuild it (Debian's security updates)
#     with `podman rmi localhost/debian-python:bookworm` and the next `make image`.
# podman's settings come from deploy/containers.conf (see deploy/engine.sh).
set -euo pipefail
. "$(dirname "$0")/engine.sh"

missing=()
if [ "$ENGINE" = podman ]; then
    command -v podman >/dev/null 2>&1 || missing+=(podman)
    if [ "$CONTAINERS_CONF" = "$ROOT/deploy/containers.conf" ]; then
        command -v runc >/dev/null 2>&1 || missing+=(runc)
    fi
fi
need_base=
if [ "$BASE" = "$DEBIAN_BASE" ] && ! { command -v "$ENGINE" >/dev/null 2>&1 && image_exists "$BASE"; }; then
    need_base=1
    command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
fi

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        say "needs ${missing[*]}: install them (Debian/Ubuntu: apt-get install ${missing[*]})," \
            "or pass BASE= an image with Python 3.11 that your engine can pull"
        exit 2
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -n "$need_base" ]; then
    say "building $BASE from Debian's packages (mmdebstrap, about a minute)"
    # mmdebstrap writes the tarball to stdout; no file to clean up
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm - | "$ENGINE" import $([ "$ENGINE" = podman ] && echo --quiet) - "$BASE" >/dev/null
fi
