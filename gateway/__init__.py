"""ipp-gateway: an IPP Everywhere printer in front of legacy printers."""

__version__ = "0.1.0"
