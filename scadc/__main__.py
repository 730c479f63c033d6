import sys

from scadc.cli import main

sys.exit(main())
