"""Compiles the translation catalogs (locales/*/LC_MESSAGES/syndicate.po) to .mo at install.

Everything else about the package is in pyproject.toml. The .mo files are build output, not
in git (.gitignore); syndicate.i18n compiles a .po in memory when its .mo is missing or older,
so a checkout that skipped this step still reads every translation.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

LOCALES = Path(__file__).resolve().parent / "locales"


class BuildWithCatalogs(build_py):
    """build_py, then each catalog's .mo beside its .po (also for `pip install -e .`, whose
    editable build runs this command too)."""

    def run(self) -> None:
        super().run()
        if not LOCALES.is_dir():
            return
        # Babel is a run-time dependency, and pyproject.toml's build-system lists it so it
        # is importable here.
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in sorted(LOCALES.glob("*/LC_MESSAGES/syndicate.po")):
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parent.parent.name, domain="syndicate")
            with po.with_suffix(".mo").open("wb") as compiled:
                write_mo(compiled, catalog, use_fuzzy=False)
            self.announce(f"compiled {po.relative_to(LOCALES.parent)}", level=2)


setup(cmdclass={"build_py": BuildWithCatalogs})
