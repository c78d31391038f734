"""``POST /v1/embeddings`` through the unmodified voyageai 0.5 SDK (raw HTTP where the SDK hides the wire)."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest
import voyageai
import voyageai.error

from harvest_defs.emulator import EmulatorServer
from harvest_defs.emulator.content import embed_text
from harvest_defs_tests.conftest import TEST_VOYAGE_KEY


@pytest.fixture
def vo(emulator: EmulatorServer) -> voyageai.Client:
    return voyageai.Client(api_key=TEST_VOYAGE_KEY, base_url=emulator.voyage_base_url, max_retries=0)


def as_f32(values: list[float] | list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


@pytest.mark.parametrize("input_type", [None, "query", "document"])
def test_embed_each_input_type_returns_the_deterministic_unit_vectors(
    vo: voyageai.Client, emulator: EmulatorServer, input_type: str | None
) -> None:
    texts = ["The on-call stipend is paid monthly.", "Deploys happen on Tuesdays."]
    result = vo.embed(texts, model="voyage-3.5", input_type=input_type)
    assert len(result.embeddings) == 2
    for text, vector in zip(texts, result.embeddings, strict=True):
        arr = as_f32(vector)
        assert arr.shape == (1024,)
        assert np.linalg.norm(arr) == pytest.approx(1.0, abs=1e-5)
        assert np.array_equal(arr, embed_text(text, 1024))  # base64 float32 round-trips bit for bit
    assert result.total_tokens == sum(-(-len(t) // 4) for t in texts)
    stats = emulator.stats()
    assert stats["voyage_embed_calls"] == 1
    assert stats["voyage_texts"] == 2
    assert stats["voyage_tokens"] == result.total_tokens


@pytest.mark.parametrize("dim", [256, 512, 1024, 2048])
def test_output_dimension(vo: voyageai.Client, dim: int) -> None:
    result = vo.embed(["flexible dimensions"], model="voyage-3-large", output_dimension=dim)
    arr = as_f32(result.embeddings[0])
    assert arr.shape == (dim,)
    assert np.linalg.norm(arr) == pytest.approx(1.0, abs=1e-5)


def test_model_default_dimensions_and_fixed_size_models(vo: voyageai.Client) -> None:
    assert len(vo.embed(["x y"], model="voyage-code-2").embeddings[0]) == 1536
    assert len(vo.embed(["x y"], model="voyage-3-lite").embeddings[0]) == 512
    with pytest.raises(voyageai.error.InvalidRequestError, match="output_dimension"):
        vo.embed(["x y"], model="voyage-finance-2", output_dimension=512)
    with pytest.raises(voyageai.error.InvalidRequestError, match="output_dimension"):
        vo.embed(["x y"], model="voyage-3.5", output_dimension=300)


def test_deterministic_and_lexically_meaningful(vo: voyageai.Client) -> None:
    texts = [
        "Expense reports are approved by your manager within five days.",
        "Your manager approves expense reports within five business days.",
        "The database migration runs in a nightly maintenance window.",
    ]
    first = vo.embed(texts, model="voyage-3.5", input_type="document").embeddings
    again = vo.embed(texts, model="voyage-3.5", input_type="document").embeddings
    assert first == again
    a, b, c = (as_f32(v) for v in first)
    assert float(a @ b) > float(a @ c) + 0.3


def test_quantised_output_dtypes(vo: voyageai.Client) -> None:
    text = "quantised embeddings keep the sign of every dimension"
    reference = embed_text(text, 512)
    int8 = np.asarray(
        vo.embed([text], model="voyage-3.5", output_dimension=512, output_dtype="int8").embeddings[0]
    )
    uint8 = np.asarray(
        vo.embed([text], model="voyage-3.5", output_dimension=512, output_dtype="uint8").embeddings[0]
    )
    ubinary = vo.embed([text], model="voyage-3.5", output_dimension=512, output_dtype="ubinary").embeddings[0]
    binary = vo.embed([text], model="voyage-3.5", output_dimension=512, output_dtype="binary").embeddings[0]
    assert int8.shape == uint8.shape == (512,)
    assert np.array_equal(
        np.sign(int8[np.abs(reference) > 0.01]), np.sign(reference[np.abs(reference) > 0.01])
    )
    assert np.array_equal(uint8.astype(int) - 128, int8.astype(int))
    assert len(ubinary) == len(binary) == 512 // 8
    bits = np.unpackbits(np.asarray(ubinary, dtype=np.uint8))
    assert np.array_equal(bits.astype(bool), reference > 0)
    assert [u - 128 for u in ubinary] == binary
    with pytest.raises(voyageai.error.InvalidRequestError, match="output_dtype"):
        vo.embed([text], model="voyage-law-2", output_dtype="int8")


def test_wire_shape_with_and_without_base64(emulator: EmulatorServer) -> None:
    url = f"{emulator.voyage_base_url}/embeddings"
    headers = {"Authorization": f"Bearer {TEST_VOYAGE_KEY}"}
    body = {"input": "one string input", "model": "voyage-3.5", "output_dimension": 256}
    plain = httpx.post(url, json=body, headers=headers).json()
    assert plain["object"] == "list"
    assert plain["model"] == "voyage-3.5"
    assert plain["usage"] == {"total_tokens": 4}
    assert [d["index"] for d in plain["data"]] == [0]
    assert plain["data"][0]["object"] == "embedding"
    assert isinstance(plain["data"][0]["embedding"], list)
    encoded = httpx.post(url, json={**body, "encoding_format": "base64"}, headers=headers).json()
    raw = np.frombuffer(base64.b64decode(encoded["data"][0]["embedding"]), dtype="<f4")
    assert np.array_equal(raw, as_f32(plain["data"][0]["embedding"]))


def test_input_count_limit(vo: voyageai.Client, emulator: EmulatorServer) -> None:
    assert len(vo.embed(["t"] * 1000, model="voyage-3.5-lite", output_dimension=256).embeddings) == 1000
    with pytest.raises(voyageai.error.InvalidRequestError, match="1000"):
        vo.embed(["t"] * 1001, model="voyage-3.5-lite")
    emulator.configure(voyage_max_inputs=3)
    with pytest.raises(voyageai.error.InvalidRequestError):
        vo.embed(["a", "b", "c", "d"], model="voyage-3.5")
    assert emulator.stats()["voyage_embed_calls"] == 1


def test_per_request_token_limit(vo: voyageai.Client, emulator: EmulatorServer) -> None:
    # voyage-3-large: 120K tokens per request; four inputs of 32K tokens (4 chars each) are 128K.
    texts = ["word " * 25_600] * 4
    with pytest.raises(voyageai.error.InvalidRequestError) as info:
        vo.embed(texts, model="voyage-3-large")
    assert "max allowed tokens per submitted batch is 120000" in str(info.value)
    assert "Your batch has 128000 tokens" in str(info.value)
    # voyage-3.5 allows 320K in one request.
    assert vo.embed(texts, model="voyage-3.5", output_dimension=256).total_tokens == 128_000
    assert emulator.stats()["voyage_embed_calls"] == 1


def test_truncation(vo: voyageai.Client) -> None:
    long_text = "alpha beta " * 16_000  # 176,000 chars = 44,000 tokens > 32K context
    with pytest.raises(voyageai.error.InvalidRequestError, match="context length"):
        vo.embed([long_text], model="voyage-3.5", truncation=False)
    result = vo.embed([long_text, "short"], model="voyage-3.5", truncation=True)
    assert result.total_tokens == 32_000 + 2
    assert np.array_equal(as_f32(result.embeddings[0]), embed_text(long_text[: 32_000 * 4], 1024))


@pytest.mark.parametrize(
    ("texts", "model", "match"),
    [
        (["fine"], "voyage-99", "not supported"),
        (["fine", ""], "voyage-3.5", "empty"),
    ],
)
def test_bad_requests(vo: voyageai.Client, texts: list[str], model: str, match: str) -> None:
    with pytest.raises(voyageai.error.InvalidRequestError, match=match):
        vo.embed(texts, model=model)


def test_bad_input_type_and_body(emulator: EmulatorServer) -> None:
    url = f"{emulator.voyage_base_url}/embeddings"
    headers = {"Authorization": f"Bearer {TEST_VOYAGE_KEY}"}
    bad_type = httpx.post(
        url, json={"input": ["x"], "model": "voyage-3.5", "input_type": "passage"}, headers=headers
    )
    assert bad_type.status_code == 400
    assert "input_type" in bad_type.json()["detail"]
    not_json = httpx.post(url, content=b"{nope", headers=headers)
    assert not_json.status_code == 400
    assert isinstance(not_json.json()["detail"], str)
    no_model = httpx.post(url, json={"input": ["x"]}, headers=headers)
    assert no_model.status_code == 400


def test_bad_key_is_401(emulator: EmulatorServer) -> None:
    emulator.configure(valid_api_keys=["pa-the-only-key"])
    client = voyageai.Client(api_key="pa-wrong", base_url=emulator.voyage_base_url, max_retries=0)
    with pytest.raises(voyageai.error.AuthenticationError):
        client.embed(["x"], model="voyage-3.5")
    good = voyageai.Client(api_key="pa-the-only-key", base_url=emulator.voyage_base_url, max_retries=0)
    assert len(good.embed(["x"], model="voyage-3.5").embeddings) == 1
    assert emulator.stats()["voyage_401s"] == 1


def test_rpm_limit_is_429(vo: voyageai.Client, emulator: EmulatorServer) -> None:
    emulator.configure(voyage_rpm=1)
    vo.embed(["first"], model="voyage-3.5")
    with pytest.raises(voyageai.error.RateLimitError):
        vo.embed(["second"], model="voyage-3.5")
    assert emulator.stats()["voyage_429s"] == 1
    assert emulator.stats()["voyage_embed_calls"] == 1


def test_tpm_limit_charges_the_request_tokens(vo: voyageai.Client, emulator: EmulatorServer) -> None:
    emulator.configure(voyage_tpm=25)
    vo.embed(["x" * 80], model="voyage-3.5")  # 20 tokens
    with pytest.raises(voyageai.error.RateLimitError):
        vo.embed(["x" * 40], model="voyage-3.5")  # 10 more would be 30 > 25
    vo.embed(["x" * 20], model="voyage-3.5")  # 5 more fits exactly


def test_server_faults_map_to_sdk_errors(vo: voyageai.Client, emulator: EmulatorServer) -> None:
    emulator.configure(fault_rate_500=1.0)
    with pytest.raises(voyageai.error.ServerError):
        vo.embed(["x"], model="voyage-3.5")
    emulator.configure(fault_rate_500=0.0, fault_rate_529=1.0)
    with pytest.raises(voyageai.error.ServiceUnavailableError):
        vo.embed(["x"], model="voyage-3.5")
    assert "voyage_embed_calls" not in emulator.stats()
