"""Printer languages; importing this package registers each language's driver."""

from drivers.languages import pcl, pclxl, postscript, text

__all__ = ["pcl", "pclxl", "postscript", "text"]
