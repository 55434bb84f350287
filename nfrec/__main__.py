"""`python -m nfrec` is the `nfrec` command."""

import sys

from nfrec.cli.main import main

sys.exit(main())
