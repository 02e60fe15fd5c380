"""augrgb: Augmented-RGB action detection with cross-modal knowledge distillation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("augrgb")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
