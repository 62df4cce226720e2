"""A hires-fix run in the real window (under X, see screenshots.sh): the panel's Hires fix group on, the run in the
timeline with the slider's mark where the larger pass began, scrubbed to one of its steps.

Usage: DISPLAY=:99 python scripts/screenshot_hires.py [--model default] [--out docs/screenshots]
(or SHOTS=scripts/screenshot_hires.py ./scripts/screenshots.sh ... ; see that script for the X server).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("DIFFUSION_STUDIO_TEST_MODELS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from screenshots import PROMPTS, open_studio, run_until, shoot  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="default", help="model key; 'default' takes the engine's default")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--name", default="10-hires-fix")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    app, studio, model = open_studio(args.model)
    window, controller, panel = studio.window, studio.controller, studio.window.panel
    panel.set_values(panel.values().with_changes(model=model, prompt=PROMPTS.get(model, "a red apple"), steps=20,
                                                 seed=11, seed_mode="fixed", batch_count=1))
    run_until(lambda: window.status.engine_label.text().startswith("Ready"))
    size = next((m.default_size for m in controller.catalog.models if m.key == model), None) or (64, 64)
    panel.set_values(panel.values().with_changes(width=size[0], height=size[1], hires_scale=2.0, hires_steps=10,
                                                 hires_upscaler="Latent", hires_denoise=0.5))
    panel.scroll.ensureWidgetVisible(panel.hires_denoise)

    settled: list[object] = []
    controller.job_settled.connect(settled.append)
    controller.generate()
    run_until(lambda: len(settled) == 1, 600)
    track = controller.timeline.current
    window.canvas.zoom_fit()
    window.timeline_view.slider.setValue(track.hires_step + 3)  # a step of the larger pass
    shoot(window, args.out, args.name)
    controller.shutdown()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
