"""Where the studio keeps its files: settings in the config folder, history and autosave in the data folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "DiffusionStudio"
# Tests, benchmarks and screenshot scripts point the whole studio at a scratch folder with this.
HOME_ENV = "DIFFUSION_STUDIO_HOME"


@dataclass(frozen=True)
class StudioPaths:
    config_dir: Path
    data_dir: Path

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def history_dir(self) -> Path:
        return self.data_dir / "history"

    @property
    def autosave_dir(self) -> Path:
        return self.data_dir / "autosave"

    @classmethod
    def under(cls, root: str | Path) -> StudioPaths:
        root = Path(root)
        return cls(root / "config", root / "data")

    @classmethod
    def default(cls) -> StudioPaths:
        if os.environ.get(HOME_ENV):
            return cls.under(os.environ[HOME_ENV])
        return cls(Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
                   Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)))
