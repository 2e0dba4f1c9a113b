"""The start-up warm-up pays torch's lazy optimizer imports (fresh interpreter)."""

import json
import subprocess
import sys

SCRIPT = """
import json, sys
from explorer.core.jobs import CancelToken
from explorer.core.training.warmup import warm_up
before = "torch._dynamo" in sys.modules
events = list(warm_up(token=CancelToken()))
print(json.dumps({"before": before, "after": "torch._dynamo" in sys.modules,
                  **events[-1].results}))
"""


def test_warm_up_imports_what_the_first_optimizer_would():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True,
        timeout=120, check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["before"] is False
    assert result["after"] is True
    assert result["imported"] is True
    assert result["seconds"] > 0
