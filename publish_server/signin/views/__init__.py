"""The sign-in blueprints: thin views over the services in :mod:`publish_server.signin`."""

from __future__ import annotations

from . import code, devices, password, reset

__all__ = ["BLUEPRINTS"]

# Registered in this order by create_app (before the publication pages and the API).
BLUEPRINTS = (password.bp, password.api_bp, code.bp, code.api_bp, devices.bp, reset.bp)
