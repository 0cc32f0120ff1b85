"""Adding an image to a product as an uploaded file (multipart): recognised by its bytes,
stored under the data dir by its content's hash, served back at an absolute URL, and then
added like any image URL (same event, same limits, same positions)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.catalog.support import (
    IMAGE_FIELDS,
    IMG1,
    IMG2,
    admin,
    events,
    new_product,
    published_product,
    read_as_admin,
    snapshot,
    stored_images,
)
from tests.conftest import Shop, _empty_tables, shop_settings
from tests.users.support import assert_error, fields
from tienda.app import ALL_MODULES, create_app
from tienda.platform.clock import FrozenClock
from tienda.platform.runtime import Platform

IMMUTABLE = "public, max-age=31536000, immutable"
FORM_OVERHEAD = 64 * 1024


@pytest.fixture
async def shop(database_urls: Any, tmp_path: Path, settings_overrides: dict[str, Any]) -> AsyncIterator[Shop]:
    """The usual shop, on SQLite only (uploads live on the file system, whatever the database)
    and with the test's `settings_overrides`."""
    settings = shop_settings(tmp_path, await database_urls.get_url("sqlite"), **settings_overrides)
    clock = FrozenClock()
    platform = Platform.build(settings, ALL_MODULES, clock=clock)
    await _empty_tables(platform)
    transport = httpx.ASGITransport(app=create_app(settings, platform=platform), client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        yield Shop(client=client, platform=platform, clock=clock, data_dir=tmp_path, settings=settings)
    await platform.close()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(*, red: int = 200, padding: int = 0) -> bytes:
    """A valid 1x1 PNG of one colour; `padding` bytes of text make it larger."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes([0, red, 30, 60]))
    text = _chunk(b"tEXt", b"Comment\x00" + b"x" * padding) if padding else b""
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + text + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")  # SOI, JFIF header, EOI
WEBP = b"RIFF" + struct.pack("<I", 26) + b"WEBPVP8L" + struct.pack("<I", 13) + bytes.fromhex("2f0000000007d0ff0100")


def _url(product_id: str) -> str:
    return f"/api/v1/products/{product_id}/images"


def _name(content: bytes, extension: str) -> str:
    return f"{hashlib.sha256(content).hexdigest()}.{extension}"


async def upload(
    shop: Shop,
    product_id: str,
    content: bytes,
    auth: dict[str, str] | None,
    *,
    filename: str = "photo.png",
    content_type: str = "image/png",
    **form: Any,
) -> httpx.Response:
    parts: dict[str, Any] = {"file": (filename, content, content_type)}
    parts |= {key: (None, str(value)) for key, value in form.items()}
    return await shop.client.post(_url(product_id), files=parts, headers=auth or {})


def media_files(shop: Shop) -> list[Path]:
    """Every file under the media dir, temporary ones included."""
    root = shop.settings.media_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


class TestUpload:
    async def test_a_png_is_stored_served_back_and_added_at_its_position(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[IMG1, IMG2])
        product_id = product["productId"]
        content = png()

        response = await upload(shop, product_id, content, auth, altText="Side", position=1)

        assert response.status_code == 201, response.text
        url = f"http://shop.test/media/products/{product_id}/{_name(content, 'png')}"
        assert set(response.json()) == IMAGE_FIELDS
        assert response.json() == {"url": url, "altText": "Side", "position": 1, "isPrimary": False}
        served = await shop.client.get(url)
        assert served.status_code == 200
        assert served.content == content
        assert served.headers["content-type"] == "image/png"
        assert served.headers["cache-control"] == IMMUTABLE
        assert served.headers["x-content-type-options"] == "nosniff"
        assert (await read_as_admin(shop, auth, product_id))["images"] == [IMG1, url, IMG2]
        assert await stored_images(shop, product_id) == [(IMG1, None, True), (url, "Side", False), (IMG2, None, False)]
        assert media_files(shop) == [shop.data_dir / "media" / "products" / product_id / _name(content, "png")]

    @pytest.mark.parametrize(
        ("content", "extension", "content_type"),
        [(JPEG, "jpg", "image/jpeg"), (GIF, "gif", "image/gif"), (WEBP, "webp", "image/webp")],
    )
    async def test_the_kind_comes_from_the_bytes_not_the_name_or_declared_type(
        self, shop: Shop, content: bytes, extension: str, content_type: str
    ) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[])

        response = await upload(
            shop, product["productId"], content, auth, filename="upload.png", content_type="application/octet-stream"
        )

        assert response.status_code == 201, response.text
        assert response.json()["url"].endswith(f"/{_name(content, extension)}")
        assert response.json()["isPrimary"] is True
        served = await shop.client.get(response.json()["url"])
        assert (served.status_code, served.headers["content-type"], served.content) == (200, content_type, content)

    async def test_publishes_product_updated(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)

        response = await upload(shop, product["productId"], png(), auth)

        [payload] = await events(shop, "product.updated")
        assert payload["productId"] == product["productId"]
        assert payload["product"] == await read_as_admin(shop, auth, product["productId"])
        assert payload["product"]["images"] == [*product["images"], response.json()["url"]]

    async def test_the_public_sees_it_at_once(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth, images=[IMG1])
        before = await shop.client.get(f"/api/v1/products/{product['productId']}")  # now cached

        response = await upload(shop, product["productId"], png(), auth)

        after = await shop.client.get(f"/api/v1/products/{product['productId']}")
        assert before.json()["images"] == [IMG1]
        assert after.json()["images"] == [IMG1, response.json()["url"]]

    async def test_the_same_file_twice_is_one_file(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[IMG1])
        content = png(red=7)

        first = await upload(shop, product["productId"], content, auth, filename="a.png")
        second = await upload(shop, product["productId"], content, auth, filename="b.png")

        assert first.status_code == second.status_code == 201
        assert first.json()["url"] == second.json()["url"]
        assert (first.json()["position"], second.json()["position"]) == (1, 2)  # without a position: last
        assert [p.name for p in media_files(shop)] == [_name(content, "png")]

    async def test_position_0_makes_it_the_primary_image(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[IMG1, IMG2])

        response = await upload(shop, product["productId"], png(), auth, position=0)

        assert response.json()["position"] == 0
        assert response.json()["isPrimary"] is True
        assert (await read_as_admin(shop, auth, product["productId"]))["images"] == [response.json()["url"], IMG1, IMG2]

    @pytest.mark.parametrize(
        "settings_overrides",
        [{"public_base_url": "https://shop.example.com/"}, {"public_base_url": "https://shop.example.com"}],
        indirect=True,
    )
    async def test_public_base_url_is_the_base_of_the_url(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)
        content = png()

        response = await upload(shop, product["productId"], content, auth)

        path = f"/media/products/{product['productId']}/{_name(content, 'png')}"
        assert response.json()["url"] == f"https://shop.example.com{path}"
        assert (await shop.client.get(path)).content == content

    async def test_the_api_alias_takes_uploads_too(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[])

        response = await shop.client.post(
            f"/api/products/{product['productId']}/images", files={"file": ("p.png", png(), "image/png")}, headers=auth
        )

        assert response.status_code == 201
        assert (await read_as_admin(shop, auth, product["productId"]))["images"] == [response.json()["url"]]


class TestRefusedUploads:
    @pytest.mark.parametrize(
        "content",
        [
            b"just some text, honestly",
            b"",
            b"\x89PNG",  # a truncated signature
            b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
            b"<!doctype html><script>alert(1)</script>",
        ],
    )
    async def test_what_is_not_an_image_is_400_and_nothing_is_stored(self, shop: Shop, content: bytes) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)
        before = await snapshot(shop)

        response = await upload(shop, product["productId"], content, auth, filename="x.png", content_type="image/png")

        assert_error(response, 400, "UNSUPPORTED_IMAGE", error="Bad Request")
        assert await snapshot(shop) == before  # images and outbox (no event) unchanged
        assert media_files(shop) == []

    @pytest.mark.parametrize("settings_overrides", [{"max_image_bytes": 2048}], indirect=True)
    async def test_an_image_over_max_image_bytes_is_413_and_nothing_is_stored(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)
        before = await snapshot(shop)
        content = png(padding=2100)
        assert len(content) > 2048

        response = await upload(shop, product["productId"], content, auth)

        assert_error(response, 413, "IMAGE_TOO_LARGE", message="An image may be at most 2048 bytes")
        assert await snapshot(shop) == before
        assert media_files(shop) == []

    @pytest.mark.parametrize("settings_overrides", [{"max_image_bytes": 2048, "max_body_bytes": 1024}], indirect=True)
    async def test_a_body_far_over_it_is_refused_by_the_body_limit(self, shop: Shop) -> None:
        """The upload route allows max(max_body_bytes, max_image_bytes + 64 KiB of form overhead)."""
        auth = await admin(shop)
        product = await new_product(shop, auth)
        before = await snapshot(shop)

        response = await upload(shop, product["productId"], png(padding=200_000), auth)

        limit = 2048 + FORM_OVERHEAD
        assert_error(response, 413, "PAYLOAD_TOO_LARGE", message=f"Request body exceeds {limit} bytes")
        assert await snapshot(shop) == before
        assert media_files(shop) == []

    async def test_a_user_may_not_upload(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)
        _, user = await shop.user()
        before = await snapshot(shop)

        forbidden = await upload(shop, product["productId"], png(), user)
        anonymous = await upload(shop, product["productId"], png(), None)

        assert_error(forbidden, 403, "FORBIDDEN")
        assert_error(anonymous, 401, "UNAUTHORIZED")
        assert await snapshot(shop) == before
        assert media_files(shop) == []

    async def test_an_unknown_product_is_404_and_nothing_is_stored(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await upload(shop, "p_doesnotexist", png(), auth)

        assert_error(response, 404, "PRODUCT_NOT_FOUND")
        assert media_files(shop) == []

    async def test_a_twenty_first_image_is_409_and_nothing_is_stored(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[f"https://cdn.example.com/{n}.jpg" for n in range(20)])
        before = await snapshot(shop)

        response = await upload(shop, product["productId"], png(), auth)

        assert_error(response, 409, "IMAGE_LIMIT")
        assert await snapshot(shop) == before
        assert media_files(shop) == []

    @pytest.mark.parametrize(
        ("parts", "bad"),
        [
            ({"altText": (None, "Side")}, ["body.file"]),  # no file part
            ({"file": (None, "not a file")}, ["body.file"]),  # a plain field named file
            ({"file": ("p.png", png(), "image/png"), "position": (None, "-1")}, ["body.position"]),
            ({"file": ("p.png", png(), "image/png"), "position": (None, "first")}, ["body.position"]),
            ({"file": ("p.png", png(), "image/png"), "altText": (None, "x" * 256)}, ["body.altText"]),
            ({"file": ("p.png", png(), "image/png"), "isPrimary": (None, "true")}, ["body.isPrimary"]),
        ],
    )
    async def test_bad_form_fields_are_400_and_nothing_is_stored(
        self, shop: Shop, parts: dict[str, Any], bad: list[str]
    ) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)
        before = await snapshot(shop)

        response = await shop.client.post(_url(product["productId"]), files=parts, headers=auth)

        assert fields(assert_error(response, 400, "VALIDATION_FAILED")) == bad
        assert await snapshot(shop) == before
        assert media_files(shop) == []

    async def test_two_files_are_refused(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)
        before = await snapshot(shop)

        response = await shop.client.post(
            _url(product["productId"]),
            files=[("file", ("a.png", png(red=1), "image/png")), ("file", ("b.png", png(red=2), "image/png"))],
            headers=auth,
        )

        assert_error(response, 400, "MALFORMED_MULTIPART")
        assert await snapshot(shop) == before
        assert media_files(shop) == []

    async def test_a_multipart_body_without_a_boundary_is_refused(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)

        response = await shop.client.post(
            _url(product["productId"]), content=b"--x\r\n", headers={**auth, "Content-Type": "multipart/form-data"}
        )

        assert_error(response, 400, "MALFORMED_MULTIPART")

    @pytest.mark.parametrize(
        "headers",
        [
            {"Content-Type": "text/plain"},
            {"Content-Type": "image/png"},
            {"Content-Type": "application/x-www-form-urlencoded"},
            {},
        ],
    )
    async def test_a_body_neither_json_nor_multipart_is_415(self, shop: Shop, headers: dict[str, str]) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)
        before = await snapshot(shop)

        response = await shop.client.post(
            _url(product["productId"]), content=b"url=https://cdn.example.com/x.jpg", headers={**auth, **headers}
        )

        assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE", error="Unsupported Media Type")
        assert await snapshot(shop) == before


class TestBodyLimit:
    @pytest.mark.parametrize("settings_overrides", [{"max_body_bytes": 4096, "max_image_bytes": 16384}], indirect=True)
    async def test_an_image_over_max_body_bytes_but_within_max_image_bytes_is_taken(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[])
        content = png(padding=16000)
        assert 4096 < len(content) <= 16384

        response = await upload(shop, product["productId"], content, auth)

        assert response.status_code == 201, response.text
        assert (await shop.client.get(response.json()["url"])).content == content

    @pytest.mark.parametrize("settings_overrides", [{"max_body_bytes": 4096, "max_image_bytes": 16384}], indirect=True)
    async def test_json_bodies_keep_the_smaller_limit(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[])
        before = await snapshot(shop)

        response = await shop.client.post(
            _url(product["productId"]),
            json={"url": "https://cdn.example.com/x.jpg", "altText": "x" * 8000},
            headers=auth,
        )

        assert_error(response, 413, "PAYLOAD_TOO_LARGE", message="Request body exceeds 4096 bytes")
        assert await snapshot(shop) == before

    @pytest.mark.parametrize("settings_overrides", [{"max_body_bytes": 4096, "max_image_bytes": 16384}], indirect=True)
    async def test_only_an_admin_gets_the_larger_limit(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[])
        _, user = await shop.user()

        response = await upload(shop, product["productId"], png(padding=16000), user)

        assert_error(response, 403, "FORBIDDEN")  # refused before a byte of the body is read
        assert media_files(shop) == []


class TestServing:
    async def test_a_file_that_is_not_there_is_404_in_the_envelope(self, shop: Shop) -> None:
        response = await shop.client.get(f"/media/products/p_nothing/{_name(b'nothing', 'png')}")

        assert_error(response, 404, "IMAGE_NOT_FOUND")

    @pytest.mark.parametrize(
        "raw_path",
        [
            "/media/products/%2e%2e/secret.png",
            "/media/products/%2E%2E/%2E%2E",
            "/media/products/{product}/%2e%2e",
            "/media/products/{product}/..%2fsecret.png",
            "/media/products/{product}/..%2f..%2f..%2fsecret.png",
            "/media/products/%2e%2e%2f%2e%2e/secret.png",
            "/media/products/{product}/%2e%2e%5c%2e%2e%5csecret.png",
            "/media/products/{product}/{upper}",
            "/media/products/{product}/{svg}",
            "/media/products/{product}/.{name}",
        ],
    )
    async def test_no_path_leads_out_of_the_media_dir(self, shop: Shop, raw_path: str) -> None:
        """httpx resolves a literal `..` itself, so the attempts are percent-encoded: the app
        sees them decoded, as it would a literal one from a server that passes it on."""
        auth = await admin(shop)
        product = await new_product(shop, auth)
        stored = await upload(shop, product["productId"], png(), auth)
        name = stored.json()["url"].rsplit("/", 1)[1]
        secret = b"SECRET" + png(red=99)
        for folder in (shop.data_dir, shop.settings.media_dir, shop.settings.media_dir / "products"):
            (folder / "secret.png").write_bytes(secret)
        # A file beside a stored one but not named like one of ours is not served either.
        (shop.settings.media_dir / "products" / product["productId"] / f".{name}").write_bytes(secret)
        path = raw_path.format(
            product=product["productId"], upper=name.upper(), svg=name.replace(".png", ".svg"), name=name
        )

        response = await shop.client.get(httpx.URL(f"http://shop.test{path}"))

        assert response.status_code == 404
        assert response.json()["code"] in {"IMAGE_NOT_FOUND", "NOT_FOUND"}
        assert b"SECRET" not in response.content
