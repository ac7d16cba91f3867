"""`python -m studio` runs the command line (see studio.cli)."""

import sys

from studio.cli import main

sys.exit(main())
