import sys

from dml_basicsr.cli import main

sys.exit(main())
