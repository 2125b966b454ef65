"""Where the real Binance Alpha samples are: ``shared/`` lies beside the repository (in
CI's fresh clone as on a developer's machine). A test that needs them fails loudly when
they are missing rather than skipping: the sim and the models are checked against them."""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = [
    Path(os.environ["ALPHAVOL_SAMPLES"]) if os.environ.get("ALPHAVOL_SAMPLES") else None,
    _ROOT.parent / "shared" / "binance-alpha" / "samples",
    _ROOT / "shared" / "binance-alpha" / "samples",
    Path("/work/shared/binance-alpha/samples"),
]
SAMPLES = next((p for p in _CANDIDATES if p is not None and p.is_dir()), _CANDIDATES[1])
