import sys

from avatarflow.cli import main

sys.exit(main())
