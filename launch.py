"""Start the BGE Studio web UI: `python launch.py [--share --auth USER:PASS] [--lang zh]`.

It listens on 127.0.0.1 by default. The page can start processes and read files, so a share
link (reachable from the internet) refuses to start without a login unless `--no-auth` is
given explicitly. Passwords are never printed or written anywhere.
"""

import sys

from studio.webui.launcher import main

if __name__ == "__main__":
    sys.exit(main())
