from __future__ import annotations

import pytest

from tests.pgcluster import PASSWORD, PgCluster, pg_bin


@pytest.fixture(scope="session")
def pg_cluster():
    bindir = pg_bin()
    if bindir is None:
        pytest.skip(
            "NO POSTGRESQL: the pool tests need Debian's postgresql (apt-get install -y"
            " postgresql; .ci/run installs it)"
        )
    cluster = PgCluster(bindir).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster, monkeypatch) -> str:
    """A fresh database; the password is in $ALPHAVOL_STORE_PASSWORD (not the URL)."""
    monkeypatch.setenv("ALPHAVOL_STORE_PASSWORD", PASSWORD)
    return pg_cluster.database()
