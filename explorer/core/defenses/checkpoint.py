"""Training checkpoints; the implementation lives in :mod:`explorer.core.training`
(shared with the denoiser trainer), re-exported here for existing callers."""

from explorer.core.training.checkpoint import (
    CheckpointError,
    load,
    rng_state,
    save,
    set_rng_state,
)

__all__ = ["CheckpointError", "load", "rng_state", "save", "set_rng_state"]
