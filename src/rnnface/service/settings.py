"""Service settings from `RNNFACE_*` environment variables (pydantic-settings), frozen once read."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from rnnface.errors import RnnfaceError
from rnnface.settings import default_gallery


class SettingsError(RnnfaceError):
    """An RNNFACE_* setting is malformed."""


class ServiceSettings(BaseSettings):
    """Everything `rnnface serve` can be told; e.g. RNNFACE_API_KEY=... RNNFACE_OPEN_READS=false."""

    model_config = SettingsConfigDict(env_prefix="RNNFACE_", frozen=True, extra="ignore")

    api_key: SecretStr | None = Field(None, description="Key for write routes (X-API-Key header); unset: writes are refused.")
    open_reads: bool = Field(True, description="Read routes (detect, embed, verify, identify, people) work without the key.")
    gallery: str = Field(default_factory=default_gallery, description="Gallery path or URI, as for the CLI.")
    model: Path | None = Field(None, description="Checkpoint (default: the shipped one).")
    pooling: str = Field("auto", description="Template pooling for enrollment: auto (shipped aggregator), mean, or a checkpoint path.")
    max_upload_bytes: int = Field(10 * 2**20, gt=0, description="Largest accepted image file.")
    max_images: int = Field(8, gt=0, description="Most images in one enrollment request.")
    max_pixels: int = Field(40_000_000, gt=0, description="Largest accepted image, in pixels.")
    max_decoded_bytes: int = Field(500_000_000, gt=0, description="Most memory one image may take to decode (estimated from its header).")
    max_concurrent_decodes: int = Field(2, gt=0, description="Images decoded at once; others wait (memory: this x max_decoded_bytes).")
    request_timeout_s: float = Field(30.0, gt=0, description="Longest a read request may compute before a 504.")
    body_timeout_s: float = Field(10.0, gt=0, description="Longest wait for the next part of a request body before a 408.")

    @classmethod
    def from_env(cls) -> ServiceSettings:
        """The settings from the environment; a malformed variable is one SettingsError line naming it."""
        try:
            return cls()
        except ValidationError as exc:
            problems = "; ".join(
                f"{cls.model_config['env_prefix']}{'_'.join(map(str, e['loc'])).upper()}={e.get('input')!r}: {e['msg']}"
                for e in exc.errors()
            )
            raise SettingsError(f"malformed setting: {problems}") from None
