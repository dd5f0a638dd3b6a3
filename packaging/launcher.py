"""Entry point of the frozen app: the same ``noojee-desk`` command as the installed package."""

import sys

from noojee_desk.cli import main

if __name__ == "__main__":
    sys.exit(main())
