"""Allow ``python -m noojee_desk``."""

import sys

from noojee_desk.cli import main

sys.exit(main())
