"""Launch Diffusion Studio: python main.py"""

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads anywhere

if __name__ == "__main__":
    from studio.platform_check import ensure_qt_can_start

    ensure_qt_can_start()  # before PySide6 loads: a missing X11 library gets advice, not Qt's abort
    from studio.app import main

    sys.exit(main())
