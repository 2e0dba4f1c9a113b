"""Data sets: the built-in offline subset, torchvision sets from a folder, your own
image folders and 2-D toy sets. All yield (x float32 in [0, 1], C×H×W; int label).

    from explorer.core import data
    ds = data.load("fashion-mnist-mini", split="test")
    x, y = ds.as_tensors(0, 256)
"""

from explorer.core.data.base import ArrayDataset, DataError, DataInfo
from explorer.core.data.downloads import download, remote_files
from explorer.core.data.folder import ImageFolderDataset
from explorer.core.data.registry import info, load, names

__all__ = [
    "ArrayDataset",
    "DataError",
    "DataInfo",
    "ImageFolderDataset",
    "download",
    "info",
    "load",
    "names",
    "remote_files",
]
