"""``python -m drbench.fetch build-manifest DIR [--upstream TSV] [--out FILE]``."""

import sys

from drbench.fetch.cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
