"""Sans-I/O IPP codec (RFC 8010): model, incremental reader, writer. No trio, no sockets."""
