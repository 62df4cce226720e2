"""The studio on a studio server, under X: Settings → Engine → Server, then a run, in the real window.

Starts a local Ray cluster and the studio's Serve app in this process (one CPU replica, the embedded model;
shut down at the end), opens the studio on this computer's engine, switches it to the server through the
Settings dialog as a user would, generates, and saves docs/screenshots/13-settings-engine.png and
13-studio-on-server.png.
Usage (see screenshots.sh for the X server): DISPLAY=:99 QT_QPA_PLATFORM=xcb python scripts/screenshot_server.py
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialogButtonBox  # noqa: E402
from screenshots import open_studio, pause, run_until, shoot  # noqa: E402

TOKEN = "screenshot-token"


def start_server(model: str) -> str:
    import ray
    from ray import serve

    from studio.serve.app import build_app
    from studio.serve.options import ServerOptions

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE", "DIFFUSION_STUDIO_TEST_MODELS": "1"}
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             runtime_env={"env_vars": env}, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(ServerOptions(port=port, token=TOKEN, replicas=1, default_model=model, threads=1)),
              name="studio", route_prefix="/")
    return f"http://127.0.0.1:{port}"


def stop_server() -> None:
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    url = start_server(args.model)
    try:
        app, studio, _ = open_studio(args.model)
        window, controller, panel = studio.window, studio.controller, studio.window.panel

        def fill_in_settings() -> None:
            dialog = QApplication.activeModalWidget()
            box = dialog.engine_box
            box.engine.setCurrentIndex(box.engine.findData("server"))
            box.url.setText(url)
            box.token.setText(TOKEN)
            shoot(dialog, args.out, "13-settings-engine")
            dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()

        QTimer.singleShot(500, fill_in_settings)
        window.settings_action.trigger()  # the dialog, modal, until fill_in_settings presses OK
        run_until(lambda: window.status.engine_label.text().startswith("Ready") and url in
                  window.status.engine_label.text())
        panel.set_values(panel.values().with_changes(model=args.model, prompt="a red apple", steps=24, seed=11,
                                                     seed_mode="fixed", batch_count=1, width=64, height=64))
        settled: list[object] = []
        controller.job_settled.connect(settled.append)
        controller.generate()
        run_until(lambda: len(settled) == 1)
        window.canvas.zoom_fit()
        window.timeline_view.slider.setValue(8)
        pause(0.5)
        shoot(window, args.out, "13-studio-on-server")
        print("result:", type(settled[0]).__name__, getattr(settled[0], "message", ""), file=sys.stderr)
        controller.shutdown()
        window.close()
        app.processEvents()
    finally:
        stop_server()
    os._exit(0)  # Ray's and Qt's teardown add nothing once the pictures are saved


if __name__ == "__main__":
    sys.exit(main())
