"""Steward's Open Inference Protocol endpoints, driven by a client nobody on the team wrote:
tritonclient[http] (binary tensors by default) and open-inference-openapi (generated from the
protocol's OpenAPI document). Metadata, readiness and inference on the
gateway's fixture model, predictions against the committed onnxruntime goldens, and the
error cases a client must be able to tell apart.

A versioned path pins a version, which only callers allowed to pin may do: PIN_TOKEN is
the token of one (sent as `Authorization: Bearer`); without it the server answers 401.

usage: oip_clients.py HOST:PORT PATH_PREFIX MODEL GOLDEN_JSON GOLDEN_MODEL PIN_TOKEN"""

import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

address, prefix, model, golden_path, golden_model, pin_token = sys.argv[1:7]
# A function, not a dict: tritonclient adds its own headers to the dict it is given.
def pin_headers():
    return {"Authorization": f"Bearer {pin_token}"}
golden = json.load(open(golden_path))
cases = golden["models"][golden_model]["cases"]
features = np.array([case["features"] for case in cases], dtype=np.float32)
expected = np.array([case["probabilities"] for case in cases], dtype=np.float64)

# tritonclient puts a prefix in front of every path with `url` = host:port/prefix.
client = httpclient.InferenceServerClient(url=f"{address}{prefix}", verbose=False)
assert client.is_server_live(), "not live"
assert client.is_server_ready(), "not ready"
metadata = client.get_server_metadata()
assert "binary_tensor_data" in metadata["extensions"], metadata
assert client.is_model_ready(model), "model not ready"
model_metadata = client.get_model_metadata(model)
assert model_metadata["inputs"][0]["name"] == "features", model_metadata
version = model_metadata["versions"][0]
assert client.is_model_ready(model, model_version=version)

# Binary in and out (tritonclient's default), then JSON in and out.
for binary in (True, False):
    inputs = [httpclient.InferInput("features", list(features.shape), "FP32")]
    inputs[0].set_data_from_numpy(features, binary_data=binary)
    outputs = [httpclient.InferRequestedOutput("probabilities", binary_data=binary)]
    result = client.infer(model, inputs, outputs=outputs, request_id="ci-1")
    got = result.as_numpy("probabilities").astype(np.float64)
    assert got.shape == expected.shape, got.shape
    worst = float(np.max(np.abs(got - expected)))
    assert worst <= 1e-5, f"binary={binary}: largest difference {worst}"
    response = result.get_response()
    assert response["model_name"] == model and response["id"] == "ci-1", response
    print(f"tritonclient binary={binary}: {len(cases)} predictions within {worst:.2e} of onnxruntime")
# Pinned to the served version by path.
inputs = [httpclient.InferInput("features", [1, 6], "FP32")]
inputs[0].set_data_from_numpy(features[:1])
result = client.infer(model, inputs, model_version=version, headers=pin_headers())
assert abs(float(result.as_numpy("probabilities")[0, 1]) - expected[0, 1]) <= 1e-5


def status_of(call):
    try:
        call()
    except InferenceServerException as error:
        return error.status(), error.message()
    raise AssertionError("the call succeeded")


status, message = status_of(lambda: client.infer(model, inputs, model_version=version))
assert str(status) == "401" and "Authorization" in message, (status, message)
status, message = status_of(lambda: client.get_model_metadata("nope:nope"))
assert str(status) == "404", (status, message)
status, message = status_of(lambda: client.get_model_metadata(model, model_version="0.0.0-none"))
assert str(status) == "404", (status, message)
wrong = [httpclient.InferInput("features", [1, 5], "FP32")]
wrong[0].set_data_from_numpy(np.zeros((1, 5), dtype=np.float32))
status, message = status_of(lambda: client.infer(model, wrong))
assert str(status) == "400" and "takes [-1, 6]" in message, (status, message)
typed = [httpclient.InferInput("features", [1, 6], "FP64")]
typed[0].set_data_from_numpy(np.zeros((1, 6), dtype=np.float64))
status, message = status_of(lambda: client.infer(model, typed))
assert str(status) == "400" and "FP32" in message, (status, message)
print("tritonclient: metadata, readiness, inference and error cases as expected")

# The client generated from the OIP's own OpenAPI document (open-inference-openapi): its
# pydantic models validate every answer against the protocol's schemas.
from open_inference.openapi.client import OpenInferenceClient  # noqa: E402
from open_inference.openapi.core.api_error import ApiError  # noqa: E402
from open_inference.openapi.errors import BadRequestError, NotFoundError  # noqa: E402
from open_inference.openapi.types import InferenceRequest, RequestInput  # noqa: E402

import httpx  # noqa: E402

oip = OpenInferenceClient(base_url=f"http://{address}{prefix}", httpx_client=httpx.Client(headers=pin_headers()))
oip.check_server_liveness()
oip.check_server_readiness()
server = oip.read_server_metadata()
assert server.name == "steward" and "binary_tensor_data" in server.extensions, server
described = oip.read_model_metadata(model)
assert described.name == model and described.platform and described.inputs[0].datatype == "FP32", described
oip.check_model_readiness(model)
oip.check_model_version_readiness(model, version)
request = InferenceRequest(
    id="openapi-1",
    inputs=[RequestInput(name="features", shape=list(features.shape), datatype="FP32", data=features.tolist())],
)
for answer in (oip.model_infer(model, request=request), oip.model_version_infer(model, version, request=request)):
    assert answer.model_name == model and answer.id == "openapi-1", answer
    got = np.array(answer.outputs[0].data.__root__, dtype=np.float64).reshape(expected.shape)
    worst = float(np.max(np.abs(got - expected)))
    assert worst <= 1e-5, worst
try:
    oip.check_model_readiness("nope:nope")
    raise AssertionError("an unknown model is ready")
except NotFoundError:
    pass
try:
    oip.read_model_metadata("nope:nope")
    raise AssertionError("an unknown model has metadata")
except ApiError as error:
    assert error.status_code == 404, error
bad = InferenceRequest(inputs=[RequestInput(name="features", shape=[1, 6], datatype="FP32", data=[1.0, 2.0])])
try:
    oip.model_infer(model, request=bad)
    raise AssertionError("a short tensor was accepted")
except BadRequestError as error:
    assert "needs 6 elements" in str(error.body), error.body
print("open-inference-openapi: health, metadata, readiness, inference and error mapping as expected")
