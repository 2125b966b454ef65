"""The deployment files (deploy/) fit the image (Containerfile) and the unit they extend:
what an operator would otherwise find out from a pod that cannot read its config, a node
that cannot write its data, or a drop-in that systemd ignores. (Building and running the
image itself is `make test-image`.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CONTAINERFILE = (ROOT / "Containerfile").read_text()


def image_config_path() -> PurePosixPath:
    found = re.search(r"ALPHAVOL_CONFIG=(\S+)", CONTAINERFILE)
    assert found, "the Containerfile sets no ALPHAVOL_CONFIG"
    return PurePosixPath(found.group(1))


def image_uid() -> int:
    found = re.search(r"useradd --uid (\d+)", CONTAINERFILE)
    assert found, "the Containerfile creates no user with a fixed uid"
    return int(found.group(1))


def inside(path: str, directory: str) -> bool:
    return PurePosixPath(directory) in (PurePosixPath(path), *PurePosixPath(path).parents)


def test_the_image_is_non_root_and_its_entry_point_is_alphavol():
    assert re.search(r"^USER (\d+)", CONTAINERFILE, re.M).group(1) == str(image_uid())
    assert image_uid() != 0
    assert 'ENTRYPOINT ["alphavol"]' in CONTAINERFILE
    assert re.search(r"^ARG BASE=\S*python:3\.11-slim", CONTAINERFILE, re.M)


def test_compose_nodes_get_their_config_key_and_password_where_alphavol_looks():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    nodes = {n: s for n, s in compose["services"].items() if s.get("command", [None])[0] == "run"}
    assert len(nodes) == 2
    names = [s["command"][s["command"].index("--node") + 1] for s in nodes.values()]
    assert len(set(names)) == 2, names
    for service in nodes.values():
        mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}  # in: host
        config = yaml.safe_load((DEPLOY / mounts[str(image_config_path())]).read_text())
        secrets = {f"/run/secrets/{s}" for s in service["secrets"]}
        assert service["environment"]["ALPHAVOL_SECRET_KEY_FILE"] in secrets
        assert config["store"]["password_file"] in secrets
        assert set(service["secrets"]) <= set(compose["secrets"])
        # paths: the data volume, and a directory the image's user may create
        assert config["paths"]["data_dir"] in mounts
        assert inside(config["paths"]["runtime_dir"], "/tmp")
        assert service["healthcheck"]["test"] == ["CMD", "alphavol", "status"]


def test_kubernetes_pods_read_their_config_and_secrets_and_write_only_to_volumes():
    kdir = DEPLOY / "kubernetes"
    kustomization = yaml.safe_load((kdir / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (kdir / resource).is_file(), resource
    (generated,) = kustomization["configMapGenerator"]
    (config_file,) = generated["files"]
    config = yaml.safe_load((kdir / config_file).read_text())
    deployment = yaml.safe_load((kdir / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsUser"] == image_uid()
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    env = {e["name"]: e for e in container["env"]}

    # the config: the generated ConfigMap, mounted where the image's ALPHAVOL_CONFIG points
    config_volume = mounts[str(image_config_path().parent)]
    assert config_volume["configMap"]["name"] == generated["name"]
    assert image_config_path().name == config_file
    # the key and the database password: files of the Secret's mount
    (secret_dir,) = [p for p, v in mounts.items() if "secret" in v]
    assert inside(env["ALPHAVOL_SECRET_KEY_FILE"]["value"], secret_dir)
    assert inside(config["store"]["password_file"], secret_dir)
    # a read-only root: alphavol writes only into volumes
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    writable = [p for p, v in mounts.items() if "emptyDir" in v]
    for key in ("data_dir", "runtime_dir"):
        assert any(inside(config["paths"][key], w) for w in writable), key
    # every node its own name; probes that ask the supervisor
    assert env["ALPHAVOL_NODE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["exec"]["command"] == ["alphavol", "status"]


def test_the_pool_drop_in_names_the_node_after_the_host_and_systemd_accepts_it(tmp_path):
    unit = (ROOT / "config" / "alphavol.service").read_text()
    drop_in = (DEPLOY / "systemd" / "alphavol.service.d" / "pool.conf").read_text()
    (exec_start,) = re.findall(r"^ExecStart=(.+)$", unit, re.M)
    assert re.findall(r"^ExecStart=(.*)$", drop_in, re.M) == ["", f"{exec_start} --node %H"]

    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed (.ci/run installs it)")
    # verify checks that ExecStart exists: point both at this checkout's entry point
    here = str(Path(sys.executable).parent / "alphavol")
    (tmp_path / "alphavol.service.d").mkdir()
    (tmp_path / "alphavol.service").write_text(
        unit.replace("/opt/alphavol/.venv/bin/alphavol", here)
    )
    (tmp_path / "alphavol.service.d" / "pool.conf").write_text(
        drop_in.replace("/opt/alphavol/.venv/bin/alphavol", here)
    )
    res = subprocess.run(
        [exe, "verify", "alphavol.service"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr + res.stdout
    assert "pool.conf" not in res.stderr, res.stderr  # not a warning about the drop-in
