import sys

from causette.explain.cli import main

sys.exit(main())
