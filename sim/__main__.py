"""Entry point of `python -m sim`."""

import sys

from sim._cli import main

sys.exit(main())
