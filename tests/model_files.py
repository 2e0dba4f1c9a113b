"""Networks the model-format tests build: a model-code file with a
neighbour module, as paper repositories ship them, and ONNX exports."""

from __future__ import annotations

import importlib
import textwrap
import warnings

import torch

NET_CODE = """
    import torch
    from torch import nn
    from blocks import stem  # a neighbour module, as paper repositories have


    class PaperNet(nn.Module):
        def __init__(self, num_classes=10, width=8):
            super().__init__()
            self.stem = stem(width)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(width, num_classes)

        def forward(self, x):
            return self.fc(self.pool(torch.relu(self.stem(x))).flatten(1))


    def paper_net_wide():
        return PaperNet(num_classes=7, width=16)
"""


def write_model_code(folder):
    """A model-code file and its neighbour; returns the .py path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "blocks.py").write_text(
        "from torch import nn\n\ndef stem(width):\n"
        "    return nn.Conv2d(3, width, 3, padding=1)\n")
    path = folder / "papernet.py"
    path.write_text(textwrap.dedent(NET_CODE))
    return path


def paper_net(folder, factory="PaperNet"):
    """The network the code file builds, imported here the plain way."""
    import sys

    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module("papernet")
        return getattr(module, factory)()
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("papernet", None)
        sys.modules.pop("blocks", None)


def onnx_export(net, path, batch=None):
    kwargs = ({} if batch else {"input_names": ["x"], "dynamic_axes": {"x": {0: "n"}}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.rand(batch or 2, 3, 32, 32),), str(path),
                          dynamo=False, **kwargs)


def write_robustbench_checkpoint(model_dir, name, dataset="cifar10", threat="Linf"):
    """A RobustBench model built by RobustBench's own architecture code, saved
    as its authors do (under 'state_dict', from DataParallel) where
    RobustBench keeps it; returns (network, path)."""
    from explorer.core.models import robustbench_zoo

    _, table = robustbench_zoo._import()
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    torch.manual_seed(0)
    net = table[BenchmarkDataset(dataset)][ThreatModel(threat)][name]["model"]()
    folder = model_dir / dataset / threat
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}},
               path)
    return net.eval(), path
