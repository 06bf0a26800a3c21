"""The paper side: transports, printer languages and format filters (never imports gateway)."""
