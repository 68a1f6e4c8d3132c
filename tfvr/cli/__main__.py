import sys

from tfvr.cli import main

sys.exit(main())
