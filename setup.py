"""The optional C raster codec; all other metadata is in pyproject.toml.

`optional=True`: without a working compiler the install still succeeds and
drivers.model.accel falls back to the pure-Python codec.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "drivers.filters._rastercodec",
            ["drivers/filters/_rastercodec.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
