"""The bundle's program: the `explorer` console script (explorer.cli:main)."""

import sys

from explorer.cli import main

if __name__ == "__main__":
    sys.exit(main())
