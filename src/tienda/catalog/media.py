"""Product images uploaded as files: recognised by their bytes, stored under the data dir by
the hash of their content, served back by URL.

A stored file never changes (its name is its content's hash), so the same upload twice is one
file, and the URL may be cached for good. Only JPEG, PNG, WebP and GIF are taken: a browser
renders nothing else from an <img>, and never runs them as a page.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tienda.catalog.errors import ImageTooLarge, UnsupportedImage

PRODUCT_DIR = re.compile(r"^p_[A-Za-z0-9_-]{1,62}$")
"""A product's public id, as `ProductRef` allows it: never `.`, `..` or a separator."""
FILE_NAME = re.compile(r"^[0-9a-f]{64}\.(?:jpg|png|webp|gif)$")

CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}


def image_extension(data: bytes) -> str | None:
    """The extension of the image `data` holds, by its magic bytes; None if it is none of ours."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


@dataclass(frozen=True)
class Upload:
    """An uploaded image, checked, with its content-addressed file name."""

    data: bytes
    name: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.name.rsplit(".", 1)[1]]


@dataclass(frozen=True)
class StoredFile:
    path: Path
    stat: os.stat_result
    content_type: str


class MediaStore:
    """Files under `root` (`<data_dir>/media`): `products/<productId>/<sha256>.<ext>`."""

    def __init__(self, root: Path, *, max_image_bytes: int) -> None:
        self.root = root
        self.max_image_bytes = max_image_bytes

    async def check(self, data: bytes) -> Upload:
        """`data` as an upload, or UnsupportedImage (400) / ImageTooLarge (413)."""
        if len(data) > self.max_image_bytes:
            raise ImageTooLarge(f"An image may be at most {self.max_image_bytes} bytes")
        extension = image_extension(data)
        if extension is None:
            raise UnsupportedImage()
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        return Upload(data=data, name=f"{digest}.{extension}")

    @staticmethod
    def url_path(product_id: str, name: str) -> str:
        return f"/media/products/{product_id}/{name}"

    async def save(self, product_id: str, upload: Upload) -> None:
        if not PRODUCT_DIR.match(product_id):
            raise ValueError(f"not a product id: {product_id!r}")
        await asyncio.to_thread(self._write, self.root / "products" / product_id / upload.name, upload.data)

    async def find(self, product_id: str, name: str) -> StoredFile | None:
        """The stored file, or None; names that are not ours (`..`, separators, other
        extensions) are simply not found."""
        if not (PRODUCT_DIR.match(product_id) and FILE_NAME.match(name)):
            return None
        return await asyncio.to_thread(self._stat, self.root / "products" / product_id / name)

    def _stat(self, path: Path) -> StoredFile | None:
        try:
            # Nothing but our own files, even if a link was put in the tree.
            if not path.resolve().is_relative_to(self.root.resolve()):
                return None
            found = path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(found.st_mode):
            return None
        return StoredFile(path=path, stat=found, content_type=CONTENT_TYPES[path.suffix[1:]])

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        if path.is_file():  # the same content is already there
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside its final name, then renamed: a reader sees the whole file or none.
        # The temporary name never matches FILE_NAME, so it is never served.
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
