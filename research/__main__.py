import sys

from research.cli.main import main

sys.exit(main())
