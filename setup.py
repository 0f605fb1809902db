"""Only the C extension lives here; everything else is in pyproject.toml.

Why a setup.py: it is the way to declare ext_modules that every setuptools
that pyproject.toml allows understands (``[tool.setuptools] ext-modules``
needs 74.1+), for ``pip install .`` and editable installs alike.  The
extension is optional: without a compiler the install still succeeds and
``loglytics.speedups`` falls back to its pure-Python definitions.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("loglytics._speedups", ["loglytics/_speedups.c"], optional=True)])
