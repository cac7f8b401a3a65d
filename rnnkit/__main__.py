"""``python -m rnnkit``: the command line."""
import sys

from rnnkit.cli import main

sys.exit(main())
