"""Pay PyTorch's one-off lazy imports before the first real run does.

Creating the first optimizer imports ``torch._dynamo`` (about 1–2 s of
Python holding the GIL, with sympy and friends). Inside a training job that
is a stall at the start of the user's first run, and the window stutters
while it lasts. The GUI runs :func:`warm_up` once, in the background, a
moment after start-up, so no run pays it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import torch

from explorer.core.jobs import CancelToken, Done, Event


def warm_up(*, token: CancelToken) -> Iterator[Event]:
    token.check()
    start = time.perf_counter()
    had_dynamo = "torch._dynamo" in sys.modules
    param = torch.zeros(1, requires_grad=True)
    torch.optim.SGD([param], lr=0.0)  # the first optimizer's imports
    yield Done({
        "seconds": time.perf_counter() - start,
        "imported": not had_dynamo and "torch._dynamo" in sys.modules,
    })
