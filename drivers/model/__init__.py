"""The bottom layer of `drivers`: the vocabulary every other layer speaks, importing nothing of
ours above it (only `drivers.errors`).

- `formats`: the document formats (MIME types) and their groups;
- `capabilities`: media sizes, `Capabilities` (what a printer can do) and `PrintOptions`
  (what a job asks for);
- `raster`: the raster model (`PixelFormat`, `RasterPage`, `Row`, the page events) and the
  `RasterSink` contract a language's raster writer fulfils;
- `packbits` and `accel`: PackBits, and the choice between the C codec and its Python twin.

Everything here is sans-I/O: pure values and functions over bytes.
"""
