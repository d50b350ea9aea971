"""Build hook: copy notebooks/ (the one source of the curated notebooks) into the wheel as
flowtools/notebooks/, so `flowtools report` works from any installation. Everything else
is in pyproject.toml; MANIFEST.in puts notebooks/ into the sdist, so a wheel built from
the sdist has them too."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithNotebooks(build_py):
    def run(self):
        super().run()
        notebooks = sorted(Path(__file__).resolve().parent.glob("notebooks/[0-9][0-9]_*.ipynb"))
        if not notebooks:
            raise SystemExit("notebooks/*.ipynb not found: the wheel would lack the curated notebooks "
                             "(build from a checkout, or from an sdist made with MANIFEST.in)")
        target = Path(self.build_lib) / "flowtools" / "notebooks"
        target.mkdir(parents=True, exist_ok=True)
        for nb in notebooks:
            (target / nb.name).write_bytes(nb.read_bytes())


setup(cmdclass={"build_py": BuildWithNotebooks})
