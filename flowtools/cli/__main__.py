"""``python -m flowtools.cli``: the ``flowtools`` command."""

import sys

from flowtools.cli import main

if __name__ == "__main__":  # not on import (the architecture test imports every module)
    sys.exit(main())
