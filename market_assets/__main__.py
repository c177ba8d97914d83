"""`python -m market_assets`: see `market_assets.cli`."""

import sys

from market_assets.cli import main

if __name__ == "__main__":
    sys.exit(main())
