"""The HTTP service: a FastAPI app (versioned JSON routes, a web page, offline API docs) built by `create_app`
from the typed `rnnface.settings.Settings`."""

from rnnface.service.app import create_app

__all__ = ["create_app"]
