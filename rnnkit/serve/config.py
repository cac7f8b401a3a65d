"""The settings of ``rnnkit serve``: where it listens and the limits a public endpoint needs."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from rnnkit.config import ConfigError

API_KEY_ENV = "RNNKIT_API_KEY"


@dataclass(frozen=True)
class ServeConfig:
    """Every limit has a default and a flag (``rnnkit serve --help``); the checks name the flag."""
    host: str = "127.0.0.1"          # loopback only unless asked
    port: int = 8000
    api_key: str = ""                # "" = no key; else required on every route but /health
    max_body_bytes: int = 1_000_000  # a JSON request
    max_upload_bytes: int = 20_000_000  # a multipart request (the uploaded file and its fields)
    max_audio_seconds: float = 60.0  # an uploaded sound
    max_image_pixels: int = 16_000_000  # an uploaded image (width x height)
    max_length: int = 2000           # tokens / frames one request may generate
    timeout_s: float = 30.0          # per request, waiting for a slot included
    max_concurrent: int = 4          # model calls running at once
    max_queue: int = 16              # requests waiting for a slot; more are answered 503 + Retry-After
    retry_after_s: int = 1
    threads: int = 0                 # torch CPU threads (0 = torch's default)

    def __post_init__(self):
        positive = {"port": self.port, "max_body_bytes": self.max_body_bytes,
                    "max_upload_bytes": self.max_upload_bytes, "max_audio_seconds": self.max_audio_seconds,
                    "max_image_pixels": self.max_image_pixels, "max_length": self.max_length,
                    "timeout_s": self.timeout_s, "max_concurrent": self.max_concurrent,
                    "retry_after_s": self.retry_after_s}
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.max_queue < 0 or self.threads < 0:
            raise ConfigError(f"--max-queue and --threads must be >= 0, got {self.max_queue} and {self.threads}")
        if self.port > 65535:
            raise ConfigError(f"--port must be at most 65535, got {self.port}")
        if self.host != "localhost":
            try:
                ipaddress.ip_address(self.host)
            except ValueError:
                raise ConfigError(f"--host must be an IP address (127.0.0.1, 0.0.0.0, ::1) or localhost, "
                                  f"got {self.host!r}") from None
