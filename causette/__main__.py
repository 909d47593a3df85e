import sys

from causette.cli import main

sys.exit(main())
