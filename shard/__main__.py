"""`python -m shard` is `panopticon shard`."""

import sys

from shard.command import main

sys.exit(main())
