import sys

from mmmi_hf.cli import main

sys.exit(main())
