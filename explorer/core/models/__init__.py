"""Models: architectures, a registry, and safe loading and saving.

Every model takes [0, 1] pixels (its first layer is ``Normalize``), returns
logits from ``forward``, penultimate features from ``features``, and carries a
``meta`` (:class:`ModelMeta`) saying what it is and how it was trained.
"""

from explorer.core.models.builtin import builtin_names, load_builtin
from explorer.core.models.compat import check_compatible
from explorer.core.models.ensemble import Ensemble
from explorer.core.models.files import load, save
from explorer.core.models.meta import ModelError, ModelMeta
from explorer.core.models.normalize import Normalize
from explorer.core.models.registry import create, description, names, spec

__all__ = [
    "Ensemble",
    "ModelError",
    "ModelMeta",
    "Normalize",
    "builtin_names",
    "check_compatible",
    "create",
    "description",
    "load",
    "load_builtin",
    "names",
    "save",
    "spec",
]
