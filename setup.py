"""What pyproject.toml cannot say: install ``tools/language_decoded_repro-dvc.pth`` into site-packages.

DVC has no plugin hook, so a ``.pth`` file is how the README's plain ``dvc repro`` gets tools.dvc_fast_lock
(dvc.lock read and written in C, the same bytes: about 4 s less per stage). Its one line imports nothing
unless the interpreter runs the ``dvc`` command. A data file lands under the install scheme's data folder
(the venv, or ~/.local with --user), so its folder is site-packages' path relative to that, for this
interpreter. Everything else about the package is in pyproject.toml.
"""

import os
import sysconfig

from setuptools import setup
from setuptools.command.editable_wheel import editable_wheel

BASE = os.path.abspath(os.sep + "base")
SITE_PACKAGES = os.path.relpath(sysconfig.get_path("purelib", vars={"base": BASE, "platbase": BASE}), BASE)


class EditableWheelWithData(editable_wheel):
    """``pip install -e .`` with the data files: setuptools 84's editable wheel asks the distribution for
    ``has_data``, which does not exist (it is ``has_data_files``), and so installs none.
    tests/test_dvc_fast_lock.py checks that the .pth is in the tests' own environment."""

    def _run_install(self, category: str) -> None:
        if category == "data":
            if self.distribution.has_data_files():
                self.run_command("install_data")
            return
        super()._run_install(category)


setup(data_files=[(SITE_PACKAGES, ["tools/language_decoded_repro-dvc.pth"])],
      cmdclass={"editable_wheel": EditableWheelWithData})
