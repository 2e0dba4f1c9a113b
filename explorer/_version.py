"""The version of Robustness Explorer: the one place it is written.

pyproject.toml reads it (``dynamic = ["version"]``), so the installed
package's metadata, ``explorer --version``, the About box, the bundle and the
AppStream release all say the same (tests/test_packaging.py checks them).
"""

__version__ = "0.1.0"
