"""The OpenAI Images API (`/v1/images/generations`, `/v1/images/edits`, `/v1/images/variations`)
through the official `openai` package, against both servers: URLs and base64 results with the
image bytes checked, `n=2`, streamed generation, edits with PNG files, and bad input answered
in OpenAI's dialect."""

from __future__ import annotations

import base64
import io
import secrets

import openai
import pytest

from conftest import Gateway, make_png

MAGIC = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg"}


def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(api_key=gw.api_key, base_url=f"{gw.base}/v1", max_retries=0, timeout=120.0)


def image_format(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return next((f for magic, f in MAGIC.items() if data.startswith(magic)), None)


def aspects(gw: Gateway) -> list[str]:
    return [r["json"]["requests"][0]["imageAspectRatio"] for r in gw.fake.requests("generate_image")]


def test_generate_returns_urls_and_n_gives_several(server: Gateway):
    with client(server) as c:
        resp = c.images.generate(prompt="a red kite over hills", n=2, size="1792x1024")
    assert resp.created > 0
    assert len(resp.data) == 2, resp
    for image in resp.data:
        assert image.url and image.url.startswith("http"), image
        assert image.b64_json is None
    assert resp.size == "1792x1024"
    # Two generations upstream, landscape, on the default model (Gemini 3.1 Flash Image).
    assert aspects(server) == ["IMAGE_ASPECT_RATIO_LANDSCAPE"] * 2


def test_generate_b64_json_carries_the_image_bytes(server: Gateway):
    with client(server) as c:
        resp = c.images.generate(model="imagen-4.0-generate-preview", prompt="a teapot",
                                 size="1024x1792", response_format="b64_json")
    data = base64.b64decode(resp.data[0].b64_json)
    fmt = image_format(data)
    assert fmt in ("png", "jpeg", "webp"), data[:16]
    assert resp.output_format == fmt
    assert resp.data[0].url is None
    assert aspects(server) == ["IMAGE_ASPECT_RATIO_PORTRAIT"]


def test_streamed_generation_ends_with_a_completed_event(server: Gateway):
    with client(server) as c:
        events = list(c.images.generate(prompt="a lantern", stream=True, size="1024x1024"))
    assert [e.type for e in events] == ["image_generation.completed"], events
    done = events[0]
    data = base64.b64decode(done.b64_json)
    assert image_format(data) == done.output_format, (data[:16], done.output_format)
    assert done.size == "1024x1024"
    assert aspects(server) == ["IMAGE_ASPECT_RATIO_SQUARE"]


def test_edit_uploads_the_png_files(server: Gateway):
    first = make_png(4, 3, (10, 200, 30))
    second = make_png(3, 4, (200, 10, 30))
    with client(server) as c:
        resp = c.images.edit(
            image=[("a.png", io.BytesIO(first), "image/png"), ("b.png", io.BytesIO(second), "image/png")],
            prompt="put both in one frame",
            response_format="b64_json",
        )
    assert image_format(base64.b64decode(resp.data[0].b64_json)), resp
    uploads = server.fake.requests("upload_image")
    assert len(uploads) == 2, uploads
    gen = server.fake.requests("generate_image")
    assert len(gen) == 1
    assert len(gen[0]["json"]["requests"][0]["imageInputs"]) == 2, gen[0]["json"]
    # No size: the first image's shape (4:3) picks the aspect.
    assert aspects(server) == ["IMAGE_ASPECT_RATIO_LANDSCAPE_FOUR_THREE"]


def test_edit_also_takes_json_with_data_urls(server: Gateway):
    png = make_png(2, 2, (1, 2, 3))
    r = server.http.post("/v1/images/edits", headers=server.auth(), json={
        "prompt": "make it blue", "image": f"data:image/png;base64,{base64.b64encode(png).decode()}",
    })
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["url"].startswith("http"), r.text
    assert len(server.fake.requests("upload_image")) == 1


@pytest.mark.parametrize("kwargs, status, param", [
    ({"n": 5}, 400, "n"),
    ({"size": "enormous"}, 400, "size"),
    ({"response_format": "gif"}, 400, "response_format"),
    ({"model": "dall-e-7"}, 404, None),
    ({"model": "veo_3_1_t2v_fast_landscape"}, 400, "model"),
])
def test_bad_generation_input_gets_openai_errors(server: Gateway, kwargs, status, param):
    with client(server) as c:
        with pytest.raises(openai.APIStatusError) as exc:
            c.images.generate(prompt="x", **kwargs)
    assert exc.value.status_code == status, exc.value
    body = exc.value.body
    assert isinstance(body, dict) and body.get("message"), body
    if param:
        assert body.get("param") == param, body
    assert server.fake.requests("generate_image") == []


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_mask_and_variations_are_refused_with_the_reason(server: Gateway):
    png = make_png(2, 2, (9, 9, 9))
    with client(server) as c:
        with pytest.raises(openai.BadRequestError) as exc:
            c.images.edit(image=("a.png", io.BytesIO(png), "image/png"), prompt="x",
                          mask=("m.png", io.BytesIO(png), "image/png"))
        assert exc.value.body["param"] == "mask"
        assert "mask" in exc.value.body["message"]
        with pytest.raises(openai.BadRequestError) as exc:
            c.images.create_variation(image=("a.png", io.BytesIO(png), "image/png"))
        assert "/v1/images/edits" in exc.value.body["message"]
        with pytest.raises(openai.BadRequestError) as exc:
            c.images.edit(image=[], prompt="nothing to edit")
    assert server.fake.requests("generate_image") == []


def test_a_tenant_key_has_its_models_and_each_image_counts(server: Gateway):
    r = server.http.post("/api/keys", headers=server.admin_headers(), json={
        "name": f"images-{secrets.token_hex(4)}", "quota": {"images_per_day": 2},
        "models": ["imagen-*"]})
    assert r.status_code == 201, r.text
    key = r.json()
    tenant = openai.OpenAI(api_key=key["key"], base_url=f"{server.base}/v1", max_retries=0,
                           timeout=120.0)
    with tenant as c:
        with pytest.raises(openai.PermissionDeniedError) as exc:
            c.images.generate(prompt="not my model")
        assert exc.value.code == "model_not_allowed", exc.value.body
        resp = c.images.generate(model="imagen-4.0-generate-preview", prompt="two", n=2)
        assert len(resp.data) == 2
        with pytest.raises(openai.RateLimitError) as exc:
            c.images.generate(model="imagen-4.0-generate-preview", prompt="one more")
        assert exc.value.code == "insufficient_quota", exc.value.body
    days = server.http.get(f"/api/keys/{key['id']}/usage", headers=server.admin_headers()).json()["days"]
    assert days[0]["images"] == 2, days
