"""Build hook: copy notebooks/ (the one source of the curated notebooks) into the wheel as
flowtools/notebooks/, so `flowtools report` works from any installation. Everything else
is in pyproject.toml."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithNotebooks(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "flowtools" / "notebooks"
        target.mkdir(parents=True, exist_ok=True)
        for nb in sorted(Path(__file__).parent.glob("notebooks/[0-9][0-9]_*.ipynb")):
            (target / nb.name).write_bytes(nb.read_bytes())


setup(cmdclass={"build_py": BuildWithNotebooks})
