"""The project's metadata and pins are in pyproject.toml; this file stays for tools that call it."""

from setuptools import setup

setup()
