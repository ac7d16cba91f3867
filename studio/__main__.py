"""`python -m studio` runs the command line (see studio.cli)."""

import sys

from studio.cli.commands import main

sys.exit(main())
