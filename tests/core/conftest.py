"""Fixtures shared by the core tests."""

from __future__ import annotations

import pytest

from explorer.core import data
from explorer.core.data.base import ArrayDataset


@pytest.fixture(scope="session")
def sets():
    """256 training images of the built-in set and its test split."""
    train = data.load("fashion-mnist-mini", "train")
    test = data.load("fashion-mnist-mini", "test")
    small = ArrayDataset(train.images[:256], train.labels[:256], train.classes,
                         train.info)
    return small, test
