import sys

from avatarflow_ops.cli import main

sys.exit(main())
