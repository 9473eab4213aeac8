import sys

from trafficprn.cli import main

sys.exit(main())
