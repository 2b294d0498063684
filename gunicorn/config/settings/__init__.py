"""Every setting, one module per documentation section, registered in docs order."""

from __future__ import annotations

from gunicorn.config.core import register_settings
from gunicorn.config.settings import (
    config_file,
    control,
    debugging,
    dirty_arbiters,
    dirty_hooks,
    http2,
    logging,
    process_naming,
    security,
    server_hooks,
    server_mechanics,
    server_socket,
    ssl,
    worker_processes,
)

SECTIONS = [
    config_file,
    server_socket,
    worker_processes,
    security,
    debugging,
    server_mechanics,
    logging,
    process_naming,
    server_hooks,
    ssl,
    http2,
    dirty_arbiters,
    dirty_hooks,
    control,
]

for _module in SECTIONS:
    register_settings(_module.SETTINGS)
