"""Image files as users have them: every format and mode the studio lists opens as RGB, and a file that
cannot be opened is a message naming it (in the window and on the command line), never a traceback."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QFileDialog

from studio.cli import main
from studio.io.image_formats import IMAGE_SUFFIXES, OPEN_FILTER, is_image_path
from studio.io.png import MAX_IMAGE_PIXELS, ImageFileError, load_image

RGB = np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims ``width`` x ``height`` pixels and holds none: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IEND", b""))
    return path


def broken_exif_webp(path: Path) -> Path:
    Image.fromarray(RGB).save(path, exif=b"garbage, not a TIFF block")
    return path


@pytest.mark.parametrize("suffix", IMAGE_SUFFIXES)
def test_every_listed_suffix_opens(tmp_path, suffix):
    path = tmp_path / f"picture{suffix}"
    Image.fromarray(RGB).save(path, **({"quality": 100} if suffix in (".jpg", ".jpeg", ".webp") else {}))
    image = load_image(path)
    assert image.shape == RGB.shape and image.dtype == np.uint8
    if suffix in (".png", ".bmp", ".tif", ".tiff"):
        assert np.array_equal(image, RGB)


def test_modes_become_rgb_without_clipping_16_bit(tmp_path):
    deep = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert load_image(tmp_path / "deep.png")[0, :, 0].tolist() == [0, 128, 255]
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)).save(tmp_path / "float.tif")
    assert load_image(tmp_path / "float.tif")[0, :, 1].tolist() == [0, 128, 255]
    Image.fromarray(RGB).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(RGB).convert("P").save(tmp_path / "palette.png")
    grey_alpha = Image.fromarray(RGB).convert("LA")
    grey_alpha.putalpha(0)
    grey_alpha.save(tmp_path / "transparent.png")
    for name in ("cmyk.jpg", "palette.png", "transparent.png"):
        image = load_image(tmp_path / name)
        assert image.shape == RGB.shape and image.dtype == np.uint8
    assert (load_image(tmp_path / "transparent.png") == 255).all()  # alpha 0 composited on white


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, words its message must hold)."""
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "notes.png").write_text("not an image at all")
    Image.fromarray(RGB).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    return {
        "missing": (tmp_path / "missing.png", "missing.png does not exist"),
        "folder": (tmp_path / "folder.png", "folder.png is a folder, not an image file"),
        "not an image": (tmp_path / "notes.png", "notes.png is not an image the studio can read"),
        "truncated": (tmp_path / "cut.png", "cut.png is damaged or truncated"),
        "over the studio's limit": (png_header_only(tmp_path / "wide.png", 9000, 9000),
                                    f"wide.png is 9000x9000, 81,000,000 pixels; the studio opens images up to "
                                    f"{MAX_IMAGE_PIXELS:,} pixels"),
        "a decompression bomb": (png_header_only(tmp_path / "bomb.png", 50_000, 50_000),
                                 f"bomb.png has 2,500,000,000 pixels; the studio opens images up to "
                                 f"{MAX_IMAGE_PIXELS:,} pixels"),
    }


def test_files_that_cannot_be_opened_are_image_file_errors(tmp_path):
    for path, words in bad_files(tmp_path).values():
        with pytest.raises(ImageFileError) as info:
            load_image(path)
        assert words in str(info.value)


@pytest.fixture
def window_files(qtbot, tmp_path):
    from studio.app import create_studio
    from studio.state.paths import StudioPaths

    studio = create_studio(StudioPaths.under(tmp_path / "home"))  # no engine: opening a file needs none
    qtbot.addWidget(studio.window)
    studio.window.show()
    yield studio.window, studio.controller.files
    studio.controller.shutdown()


def open_through_the_dialog(monkeypatch, window, path: Path) -> None:
    offered = []

    def dialog(parent, caption, folder, filters):
        offered.append(filters)
        return str(path), filters

    monkeypatch.setattr(QFileDialog, "getOpenFileName", dialog)
    window.open_action.trigger()
    assert offered == [OPEN_FILTER]


def test_file_open_says_why_a_file_cannot_be_opened(window_files, monkeypatch, tmp_path):
    window, _ = window_files
    before = window.canvas.image().copy()
    for path, words in bad_files(tmp_path).values():
        window.banner.hide()
        open_through_the_dialog(monkeypatch, window, path)
        assert window.banner.text().startswith("Could not open the image: ") and words in window.banner.text()
        assert np.array_equal(window.canvas.image(), before)  # the canvas keeps what it had


def test_file_open_takes_a_tif_and_a_webp_with_broken_exif(window_files, monkeypatch, tmp_path):
    window, _ = window_files
    assert "*.tif" in OPEN_FILTER and is_image_path("scan.TIFF")
    Image.fromarray(RGB).save(tmp_path / "scan.tif")
    open_through_the_dialog(monkeypatch, window, tmp_path / "scan.tif")
    assert np.array_equal(window.canvas.image(), RGB)
    open_through_the_dialog(monkeypatch, window, broken_exif_webp(tmp_path / "photo.webp"))
    assert window.canvas.image().shape == RGB.shape
    assert window.banner.text().startswith("Opened photo.webp; its generation parameters could not be read")


def test_a_dropped_file_that_cannot_be_opened_is_a_message(window_files, tmp_path):
    window, _ = window_files
    cut = bad_files(tmp_path)["truncated"][0]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(cut))])
    drop = QDropEvent(QPointF(300, 300), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    assert "cut.png is damaged or truncated" in window.banner.text()
    Image.fromarray(RGB).save(tmp_path / "dropped.tiff")
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "dropped.tiff"))])
    window.dropEvent(QDropEvent(QPointF(300, 300), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier))
    assert np.array_equal(window.canvas.image(), RGB)


def test_the_command_line_names_a_bad_init_or_mask(tmp_path, capsys):
    files = bad_files(tmp_path)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "init.png")
    for flag, case in (("--init", "missing"), ("--init", "folder"), ("--init", "not an image"),
                       ("--init", "a decompression bomb"), ("--mask", "truncated")):
        path, words = files[case]
        extra = ["--init", str(tmp_path / "init.png")] if flag == "--mask" else []
        code = main(["generate", "--model", "toy", *extra, flag, str(path), "--out", str(tmp_path / "o.png"),
                     "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and words in err and "Traceback" not in err
