"""I/O drivers: thin loops that feed sockets to the protocol core and the adapters."""
