"""The HTTP service: a FastAPI app (versioned JSON routes + a web page) built by `create_app` from typed settings."""

from rnnface.service.app import create_app
from rnnface.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
