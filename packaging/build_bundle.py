"""Build the Diffusion Studio bundle (PyInstaller, one folder) and say how large it is and how fast it starts.

    python packaging/build_bundle.py                 build into build/dist/diffusion-studio, then measure
    python packaging/build_bundle.py --no-build      measure the bundle that is there
    python packaging/build_bundle.py --no-trim       build without the trims the spec makes (to measure them)
    python packaging/build_bundle.py --screenshot shot.png   also generate once in the bundle's window and save a
                                                     screenshot (Linux: needs Xvfb, xdotool and ImageMagick's import)

Time to window is from starting the bundle's executable to the studio printing "window shown"
(DIFFUSION_STUDIO_EXIT_WHEN_SHOWN=1, studio/ui/start_options.py), under Xvfb when there is no display. The cold start
comes first, after the page cache is emptied (drop_caches when allowed; otherwise each of the bundle's files is
evicted with posix_fadvise, which leaves shared system libraries such as libX11 cached); the warm starts follow it.
Figures go to build/bundle_report.json as well; docs/packaging.md records them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "diffusion-studio.spec"
APP_NAME = "diffusion-studio"
SHOWN_MARKER = "window shown"  # what studio/ui/start_options.py prints
START_TIMEOUT_S = 120
# Shipped beside the executable: a downloaded bundle installs its own menu entry (install_desktop.sh finds the
# icons under _internal/).
DESKTOP_FILES = ("install_desktop.sh", "diffusion-studio.desktop")


def build(dist: Path, work: Path, trim: bool) -> float:
    env = dict(os.environ, DIFFUSION_STUDIO_TRIM="1" if trim else "0", PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                    "--distpath", str(dist), "--workpath", str(work), str(SPEC)], check=True, env=env, cwd=ROOT)
    for name in DESKTOP_FILES:
        shutil.copy2(ROOT / "packaging" / name, dist / APP_NAME / name)
    return time.perf_counter() - started


def folder_bytes(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def largest_parts(internal: Path, count: int = 12) -> list[tuple[str, int]]:
    """The biggest top-level entries of _internal (torch, PySide6, ...), with the bytes each holds."""
    parts = [(p.name, folder_bytes(p) if p.is_dir() else p.lstat().st_size) for p in internal.iterdir()]
    return sorted(parts, key=lambda item: -item[1])[:count]


def empty_page_cache(folder: Path) -> str:
    """Make the next start cold; say how (drop_caches needs root, fadvise works for the files' owner)."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return "drop_caches (the whole page cache emptied)"
    except OSError:
        pass
    evicted = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as f:
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            evicted += 1
    return f"posix_fadvise(DONTNEED) on the bundle's {evicted} files (drop_caches was not permitted)"


@contextmanager
def display() -> Iterator[dict[str, str]]:
    """The environment for a window: the current display, or a private Xvfb started (and ended) here."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        yield {}
        return
    if not shutil.which("Xvfb"):
        raise SystemExit("no display and no Xvfb: install xvfb (apt-get install -y xvfb) or run under a desktop")
    number = next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists()
                  and not Path(f"/tmp/.X{n}-lock").exists())
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                break
            time.sleep(0.05)
        yield {"DISPLAY": f":{number}", "QT_QPA_PLATFORM": "xcb"}
    finally:
        server.terminate()
        server.wait(timeout=10)


def time_to_window(executable: Path, env: dict[str, str]) -> float:
    """Seconds from starting the bundle to its window being exposed on screen."""
    with tempfile.TemporaryDirectory(prefix="studio-home-") as home:
        run_env = dict(os.environ, **env, DIFFUSION_STUDIO_EXIT_WHEN_SHOWN="1", DIFFUSION_STUDIO_HOME=home)
        started = time.perf_counter()
        proc = subprocess.Popen([str(executable)], env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        timer = threading.Timer(START_TIMEOUT_S, proc.kill)  # a window that never shows ends the wait
        timer.start()
        try:
            for line in proc.stdout:
                if line.strip() == SHOWN_MARKER:
                    return time.perf_counter() - started
            raise SystemExit(f"the bundle ended without showing its window:\n{proc.stderr.read()[-3000:]}")
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def screenshot_after_generating(executable: Path, env: dict[str, str], out: Path, wait_s: float) -> None:
    """Start the bundle, press Ctrl+Enter (Generate) once its engine is up, and save the screen to ``out``."""
    for tool in ("xdotool", "import"):
        if not shutil.which(tool):
            raise SystemExit(f"--screenshot needs {tool} (apt-get install -y xdotool imagemagick)")
    with tempfile.TemporaryDirectory(prefix="studio-home-") as home:
        run_env = dict(os.environ, **env, DIFFUSION_STUDIO_HOME=home)
        log = Path(home) / "studio.log"
        with open(log, "w") as sink:
            proc = subprocess.Popen([str(executable)], env=run_env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            window = ""
            for _ in range(START_TIMEOUT_S * 2):
                found = subprocess.run(["xdotool", "search", "--name", "^Diffusion Studio$"], env=run_env,
                                       capture_output=True, text=True).stdout.split()
                if found:
                    window = found[0]
                    break
                time.sleep(0.5)
            if not window:
                raise SystemExit(f"no window appeared:\n{log.read_text()[-3000:]}")
            time.sleep(wait_s)  # the engine thread loads torch and the embedded model after the window shows
            # Real (XTest) input: a click on the status bar gives the window the focus (Xvfb has no window manager
            # to activate it), then Ctrl+Enter is the Generate shortcut.
            geometry = subprocess.run(["xdotool", "getwindowgeometry", "--shell", window], env=run_env,
                                      capture_output=True, text=True, check=True).stdout
            size = dict(line.split("=", 1) for line in geometry.split())
            x, y = int(size["X"]) + int(size["WIDTH"]) // 2, int(size["Y"]) + int(size["HEIGHT"]) - 8
            subprocess.run(["xdotool", "mousemove", "--sync", str(x), str(y), "click", "1"], env=run_env, check=True)
            subprocess.run(["xdotool", "key", "ctrl+Return"], env=run_env, check=True)
            time.sleep(wait_s)
            subprocess.run(["import", "-window", "root", str(out)], env=run_env, check=True)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"screenshot: {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "build" / "dist")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "work")
    parser.add_argument("--no-build", action="store_true", help="measure the bundle already in --dist")
    parser.add_argument("--no-trim", action="store_true", help="build without the spec's trims")
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--screenshot", type=Path, help="generate once in the bundle and save the screen here")
    parser.add_argument("--wait", type=float, default=20.0, help="seconds to wait for the engine, then the image")
    args = parser.parse_args(argv)

    report: dict[str, object] = {"trimmed": not args.no_trim}
    if not args.no_build:
        report["build_s"] = round(build(args.dist, args.work, trim=not args.no_trim), 1)
        print(f"built in {report['build_s']} s")
    bundle = args.dist / APP_NAME
    executable = bundle / (APP_NAME + (".exe" if sys.platform == "win32" else ""))
    if not executable.is_file():
        raise SystemExit(f"no bundle at {bundle}: build it first (drop --no-build)")

    size = folder_bytes(bundle)
    report["size_bytes"] = size
    report["largest_parts"] = largest_parts(bundle / "_internal")
    trims = args.work / APP_NAME / "trims.json"
    if trims.is_file() and not args.no_trim:
        report["trims_saved_bytes"] = json.loads(trims.read_text())
    print(f"bundle: {bundle} ({size / 2**20:.0f} MiB)")
    for name, n in report["largest_parts"]:
        print(f"  {name:<40} {n / 2**20:8.1f} MiB")

    with display() as env:
        report["cold_method"] = empty_page_cache(bundle)
        cold = time_to_window(executable, env)
        warm = [time_to_window(executable, env) for _ in range(args.warm_runs)]
        report["cold_start_s"] = round(cold, 2)
        report["warm_start_s"] = [round(t, 2) for t in warm]
        print(f"time to window: cold {cold:.2f} s ({report['cold_method']}); warm "
              + ", ".join(f"{t:.2f}" for t in warm) + f" s (median {statistics.median(warm):.2f} s)")
        if args.screenshot:
            screenshot_after_generating(executable, env, args.screenshot.resolve(), args.wait)

    out = ROOT / "build" / "bundle_report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
