"""Launch Diffusion Studio from a source checkout: python main.py (the installed command is diffusion-studio)."""

import sys

from studio.launch import main  # importing studio sets OMP_WAIT_POLICY before torch can load

if __name__ == "__main__":
    sys.exit(main())
