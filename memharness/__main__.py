import sys

from memharness.cli import main

sys.exit(main())
