"""`python -m sentinel_async` runs the `sentinel` command."""

import sys

from sentinel_async.cli import main

sys.exit(main())
