"""`python -m aggregator` is `panopticon aggregator`."""

import sys

from aggregator.command import main

sys.exit(main())
