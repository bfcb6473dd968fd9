"""Hostile and careless REST clients get what tensorflow_model_server gives them: a 4xx and
a JSON {"error": ...} body (http_rest_api_handler.cc's MakeJsonFromStatus), never a 500,
a hang or an HTML page; idle connections cannot starve the request threads."""

import http.client
import json
import os
import socket

import pytest
from serving_helpers import free_port, http_exchange, save_fault_model, wait_for

from keras_bert_impl.serving import ModelServer, ServerOptions
from keras_bert_impl.serving.rest_server import RestServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("fault_model")
    save_fault_model(base / "1")
    running = ModelServer(
        ServerOptions(
            port=0,
            rest_api_port=free_port(),
            model_base_path=str(base),
            file_system_poll_wait_seconds=0,
            rest_api_num_threads=2,
            rest_api_timeout_in_ms=1000,
        )
    )
    running.start()
    yield running
    running.stop()


def _post(port, path, body, method="POST", headers=""):
    return http_exchange(
        port,
        f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
        .encode()
        + body,
    )


def _assert_client_error(answer, code, *words):
    status, content_type, document = answer
    assert status == code, document
    assert content_type == "application/json"
    assert list(document) == ["error"]
    for word in words:
        assert word in document["error"]


def test_the_fixture_serves(server):
    status, _, document = _post(
        server.rest_port, "/v1/models/default:predict", b'{"instances": [1, 41]}'
    )
    assert (status, document) == (200, {"predictions": [2, 42]})


def test_version_past_int64(server):
    # http_rest_api_util.cc: "Failed to convert version: ... to numeric." (INVALID_ARGUMENT)
    answer = _post(
        server.rest_port,
        "/v1/models/default/versions/9223372036854775808:predict",
        b'{"instances": [1]}',
    )
    _assert_client_error(answer, 400, "Failed to convert version: 9223372036854775808")


def test_json_nested_thousands_of_levels(server):
    body = b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    _assert_client_error(
        _post(server.rest_port, "/v1/models/default:predict", body), 400, "JSON"
    )


def test_json_nested_deeper_than_the_tensor_but_parsable(server):
    body = b'{"instances": ' + b"[" * 900 + b"1" + b"]" * 900 + b"}"
    _assert_client_error(_post(server.rest_port, "/v1/models/default:predict", body), 400)


def test_lone_surrogate_in_a_string_input(server):
    body = b'{"signature_name": "text", "instances": ["\\ud800"]}'
    _assert_client_error(
        _post(server.rest_port, "/v1/models/default:predict", body), 400, "surrogate"
    )


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 2**64])
def test_integer_past_int32(server, value):
    # json_tensor.cc: a value rapidjson's IsInt() refuses is "not of expected type: int32".
    body = json.dumps({"instances": [1, value]}).encode()
    _assert_client_error(
        _post(server.rest_port, "/v1/models/default:predict", body),
        400,
        f"JSON Value: {value} Type: Number is not of expected type: int32",
    )


def test_booleans_among_numbers_are_refused(server):
    _assert_client_error(
        _post(server.rest_port, "/v1/models/default:predict", b'{"instances": [1, true]}'),
        400,
        "is not of expected type: int32",
    )


def test_a_wrong_shape_is_refused_before_the_values_are_read(server):
    body = json.dumps({"instances": [[i, i] for i in range(1000)]}).encode()
    _assert_client_error(
        _post(server.rest_port, "/v1/models/default:predict", body),
        400,
        "shape [1000, 2] is not compatible with the signature's shape [-1]",
    )


def test_content_length_not_a_number(server):
    answer = http_exchange(
        server.rest_port,
        b"POST /v1/models/default:predict HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n{}",
    )
    _assert_client_error(answer, 400, "Content-Length")


def test_content_length_longer_than_the_body(server):
    # The server's --rest_api_timeout_in_ms (1 s here) bounds the wait for the rest.
    answer = http_exchange(
        server.rest_port,
        b"POST /v1/models/default:predict HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{}",
    )
    _assert_client_error(answer, 408, "reading the request body")


def test_an_answer_past_the_timeout_is_a_504(server, tmp_path):
    # The fault model's `read` blocks on a FIFO until someone opens its other end.
    fifo = tmp_path / "never_written.fifo"
    os.mkfifo(fifo)
    body = json.dumps({"signature_name": "read", "inputs": {"path": str(fifo)}}).encode()
    answer = _post(server.rest_port, "/v1/models/default:predict", body)
    _assert_client_error(answer, 504, "Deadline exceeded")

    def release():  # the request thread, once it waits on the FIFO
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            return True
        except OSError:  # ENXIO: not reading it yet
            return False

    assert wait_for(release)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_malformed_requests(server, method):
    # http_rest_api_handler.cc: anything but GET/POST on a model path is
    # "Malformed request: METHOD PATH" (INVALID_ARGUMENT).
    answer = _post(server.rest_port, "/v1/models/default", b"{}", method=method)
    _assert_client_error(answer, 400, f"Malformed request: {method} /v1/models/default")


def test_idle_connections_do_not_starve_requests(server):
    idle = [socket.create_connection(("127.0.0.1", server.rest_port)) for _ in range(24)]
    try:
        # More idle connections than request threads (2): answers still come.
        for _ in range(3):
            status, _, document = _post(
                server.rest_port, "/v1/models/default:predict", b'{"instances": [1]}'
            )
            assert (status, document) == (200, {"predictions": [2]})
    finally:
        for sock in idle:
            sock.close()


def test_keep_alive_serves_several_requests_on_one_connection(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    try:
        for value in range(3):
            connection.request(
                "POST", "/v1/models/default:predict", json.dumps({"instances": [value]})
            )
            response = connection.getresponse()
            assert (response.status, json.loads(response.read())) == (
                200,
                {"predictions": [value + 1]},
            )
    finally:
        connection.close()


class _EchoApi:
    def handle(self, method, path, body):
        return 200, {"bytes": len(body)}


@pytest.fixture
def small_server():
    running = RestServer(_EchoApi(), "127.0.0.1", 0, 1, max_body_bytes=100).start()
    yield running
    running.stop(1.0)


def test_a_body_past_the_limit_is_refused_unread(small_server):
    answer = _post(small_server.port, "/v1/models/x:predict", b"x" * 101)
    _assert_client_error(answer, 429, "exceeds the limit of 100")


def test_a_chunked_body_past_the_limit_is_refused(small_server):
    chunk = b"x" * 60
    data = (
        b"POST /v1/models/x:predict HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 2
        + b"0\r\n\r\n"
    )
    _assert_client_error(http_exchange(small_server.port, data), 429, "exceeds the limit")


def test_a_body_within_the_limit_is_read_whole(small_server):
    status, _, document = _post(small_server.port, "/v1/models/x:predict", b"x" * 100)
    assert (status, document) == (200, {"bytes": 100})
