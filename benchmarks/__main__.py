"""Entry point of ``python -m benchmarks``."""

import sys

from benchmarks.runner import main

# forkserver and spawn children import this module as __mp_main__: they must
# not start a run of their own.
if __name__ == "__main__":
    sys.exit(main())
