"""Printer languages, one module each. Importing this package registers nothing: the languages
are listed in `drivers.registry`, which says how to add one."""
