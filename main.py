"""Launch Diffusion Studio: python main.py"""

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads anywhere

if __name__ == "__main__":
    from studio.app import main

    sys.exit(main())
