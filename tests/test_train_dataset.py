"""A dataset from your own pictures: the arrays the trainers read, one schema for every source."""

import numpy as np
from PIL import Image

from studio.train.dataset import build_folder


def test_a_folder_of_pictures_becomes_a_dataset(tmp_path):
    (tmp_path / "cats").mkdir()
    Image.new("RGB", (100, 80), (200, 10, 10)).save(tmp_path / "cats" / "red_cat.png")
    Image.new("RGBA", (64, 64), (0, 0, 255, 0)).save(tmp_path / "clear-sky.png")  # transparent: on white
    (tmp_path / "clear-sky.txt").write_text(" a clear sky \n")
    data = build_folder(tmp_path)
    assert data["images64"].shape == (2, 64, 64, 3) and data["images32"].shape == (2, 32, 32, 3)
    assert data["images64"].dtype == data["images32"].dtype == np.uint8
    assert data["captions"].tolist() == ["red cat", "a clear sky"] == data["name"].tolist()
    assert data["categories"].tolist() == ["cats", "images"] and data["category"].tolist() == [0, 1]
    for key, expected in (("group", [0, 1]), ("vendor", [0, 0]), ("caption_start", [0, 1]),
                          ("caption_count", [1, 1])):
        assert data[key].dtype == np.int64 and data[key].tolist() == expected, key
    assert data["images32"][0, 16, 16].tolist() == [200, 10, 10]
    assert data["images32"][1, 16, 16].tolist() == [255, 255, 255]
