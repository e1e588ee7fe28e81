"""The official `openai` Python package against both servers (the worker under `wrangler dev`
and the native server), as a real client would use them."""

from __future__ import annotations

import re

import openai
import pytest

from conftest import Gateway

IMAGE_MD = re.compile(r"!\[Generated Image\]\((\S+?)\)")
MODEL = "gemini-3.1-flash-image-landscape"


def client(gw: Gateway, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(api_key=key or gw.api_key, base_url=f"{gw.base}/v1", max_retries=0,
                         timeout=120.0)


def test_stream_yields_image_markdown(server: Gateway):
    with client(server) as c:
        stream = c.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "a snowy owl, photo"}],
            stream=True,
        )
        content, reasoning, finish, ids, models = [], [], [], set(), set()
        for chunk in stream:
            ids.add(chunk.id)
            models.add(chunk.model)
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            if choice.delta.content:
                content.append(choice.delta.content)
            extra = choice.delta.model_extra or {}
            if extra.get("reasoning_content"):
                reasoning.append(extra["reasoning_content"])
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    text = "".join(content)
    m = IMAGE_MD.search(text)
    assert m, f"no image markdown in the content deltas: {text!r}"
    assert m.group(1).startswith("http"), m.group(1)
    assert reasoning, "no reasoning_content progress in the stream"
    assert finish == ["stop"], finish
    assert len(ids) == 1 and models == {MODEL}, (ids, models)


def test_non_stream_returns_image_markdown(server: Gateway):
    with client(server) as c:
        resp = c.chat.completions.create(
            model="imagen-4.0-generate-preview-portrait",
            messages=[{"role": "user", "content": "a paper crane"}],
        )
    assert resp.model == "imagen-4.0-generate-preview-portrait"
    assert resp.choices[0].finish_reason == "stop"
    assert IMAGE_MD.search(resp.choices[0].message.content or ""), resp


def test_list_models(server: Gateway):
    with client(server) as c:
        ids = {m.id for m in c.models.list()}
    assert MODEL in ids and "gemini-3.0-pro-image-square-4k" in ids


def test_invalid_key_raises_authentication_error(server: Gateway):
    with client(server, key="sk-definitely-wrong") as c:
        with pytest.raises(openai.AuthenticationError) as exc:
            c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code == 401
    assert exc.value.code == "invalid_api_key"


def test_unknown_model_raises_not_found(server: Gateway):
    with client(server) as c:
        with pytest.raises(openai.NotFoundError) as exc:
            c.chat.completions.create(model="gpt-nonexistent-image",
                                      messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code == 404
    assert exc.value.code == "model_not_found"


def test_content_policy_raises_bad_request(server: Gateway):
    server.fake.fault("generate_image", status=400, reason="PUBLIC_ERROR_UNSAFE_GENERATION",
                      message="Request contains an invalid argument.", times=1)
    with client(server) as c:
        with pytest.raises(openai.BadRequestError) as exc:
            c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "unsafe"}])
    assert exc.value.code == "content_policy_violation"


def test_content_policy_in_stream_raises_api_error(server: Gateway):
    server.fake.fault("generate_image", status=400, reason="PUBLIC_ERROR_UNSAFE_GENERATION",
                      message="Request contains an invalid argument.", times=1)
    with client(server) as c:
        stream = c.chat.completions.create(model=MODEL, stream=True,
                                           messages=[{"role": "user", "content": "unsafe"}])
        with pytest.raises(openai.APIError) as exc:
            for _ in stream:
                pass
    assert exc.value.code == "content_policy_violation", exc.value.body
