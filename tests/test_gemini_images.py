"""Gemini image generation through the official `google-genai` package, against both servers:
`generate_content` on the SDK's default API version (`v1`), on `v1beta` and in Vertex AI
express mode; text to image and image + text to image with the image bytes checked; the
stream (progress as thought parts, the image last); `models.list` and `models.get`; errors in
Gemini's dialect."""

from __future__ import annotations

import pytest
from google import genai
from google.genai import errors, types

from conftest import Gateway, make_png

MODEL = "gemini-3.1-flash-image"


def gclient(gw: Gateway, api_version: str | None = None, vertex: bool = False) -> genai.Client:
    opts = types.HttpOptions(base_url=gw.base, api_version=api_version) if api_version \
        else types.HttpOptions(base_url=gw.base)
    return genai.Client(api_key=gw.api_key, vertexai=vertex, http_options=opts)


def image_bytes(resp: types.GenerateContentResponse) -> bytes:
    parts = resp.candidates[0].content.parts
    images = [p.inline_data for p in parts if p.inline_data and not p.thought]
    assert len(images) == 1, parts
    assert images[0].mime_type in ("image/png", "image/jpeg", "image/webp"), images[0].mime_type
    data = images[0].data
    assert data.startswith(b"\x89PNG") or data.startswith(b"\xff\xd8\xff") or data[8:12] == b"WEBP", data[:16]
    return data


def aspects(gw: Gateway) -> list[str]:
    return [r["json"]["requests"][0]["imageAspectRatio"] for r in gw.fake.requests("generate_image")]


@pytest.mark.parametrize("version", [None, "v1beta"])
def test_text_to_image(server: Gateway, version: str | None):
    g = gclient(server, version)
    resp = g.models.generate_content(
        model=MODEL, contents="a lighthouse in fog",
        config=types.GenerateContentConfig(response_modalities=["IMAGE"],
                                           image_config=types.ImageConfig(aspect_ratio="9:16")))
    image_bytes(resp)
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    assert resp.model_version == "gemini-3.1-flash-image-portrait"
    assert aspects(server) == ["IMAGE_ASPECT_RATIO_PORTRAIT"]


def test_image_and_text_to_image(server: Gateway):
    g = gclient(server)
    png = make_png(6, 8, (30, 60, 90))
    resp = g.models.generate_content(
        model=MODEL,
        contents=[types.Part.from_bytes(data=png, mime_type="image/png"), "make it sunset orange"])
    image_bytes(resp)
    assert len(server.fake.requests("upload_image")) == 1
    # No aspect asked: the 3:4 reference picks it.
    assert aspects(server) == ["IMAGE_ASPECT_RATIO_PORTRAIT_THREE_FOUR"]


def test_stream_sends_thoughts_then_the_image(server: Gateway):
    g = gclient(server)
    chunks = list(g.models.generate_content_stream(model=MODEL, contents="a paper boat"))
    assert len(chunks) >= 2, chunks
    thoughts = [p for c in chunks[:-1] for p in c.candidates[0].content.parts]
    assert thoughts and all(p.thought and p.text for p in thoughts), thoughts
    image_bytes(chunks[-1])
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


def test_vertex_express_mode(server: Gateway):
    g = gclient(server, vertex=True)
    resp = g.models.generate_content(model=MODEL, contents="a red bicycle")
    image_bytes(resp)


def test_models_list_and_get(server: Gateway):
    g = gclient(server)
    names = [m.name for m in g.models.list()]
    assert "models/gemini-3.1-flash-image" in names and "models/veo-3.1-generate-preview" in names, names
    m = g.models.get(model=MODEL)
    assert m.name == f"models/{MODEL}"
    assert "generateContent" in (m.supported_actions or []), m
    with pytest.raises(errors.ClientError) as exc:
        g.models.get(model="no-such-model")
    assert exc.value.code == 404
    # The OpenAI dialect on the same path, without x-goog-api-key.
    r = server.http.get("/v1/models", headers=server.auth())
    assert r.json()["object"] == "list", r.text
    r = server.http.get(f"/v1/models/{MODEL}-landscape", headers=server.auth())
    assert r.status_code == 200 and r.json()["id"] == f"{MODEL}-landscape", r.text
    r = server.http.get(f"/v1/models/{MODEL}", headers=server.auth())
    assert r.status_code == 200 and r.json()["object"] == "model", r.text
    r = server.http.get("/v1/models/no-such-model", headers=server.auth())
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found", r.text


def test_errors_in_geminis_dialect(server: Gateway):
    g = gclient(server)
    with pytest.raises(errors.ClientError) as exc:
        g.models.generate_content(model="gemini-9-imaginary", contents="x")
    assert exc.value.code == 404 and exc.value.status == "NOT_FOUND", exc.value
    r = server.http.post(f"/v1/models/{MODEL}:generateContent", json={"contents": []},
                         headers={"x-goog-api-key": server.api_key})
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT", r.text
    r = server.http.post(f"/v1/models/{MODEL}:generateContent", json={"contents": [{"parts": [{"text": "x"}]}]},
                         headers={"x-goog-api-key": "wrong"})
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED", r.text
    assert server.fake.requests("generate_image") == []
