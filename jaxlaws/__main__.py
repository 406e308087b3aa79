"""``python -m jaxlaws``: the command line."""

import sys

from jaxlaws.cli import main

sys.exit(main())
