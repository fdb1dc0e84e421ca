"""`python -m panopticon` is the `panopticon` command."""

import sys

from panopticon.cli import main

sys.exit(main())
