"""The REST API's HTTP layer: aiohttp on an event loop of its own, requests on a thread pool.

What TF Serving's net_http server (util/net_http/, evhttp based) gives its clients, on a
well-kept HTTP library instead of hand-written HTTP:
- one event loop holds every connection, so idle or slow clients cannot starve the
  request threads (--rest_api_num_threads run only complete requests);
- a connection idle for `keepalive_timeout` seconds is closed; a body that does not
  arrive within --rest_api_timeout_in_ms ends in 408, a request that takes longer in 504
  (DEADLINE_EXCEEDED, http_server.cc's mapping);
- bodies are read in chunks up to `max_body_bytes` (RESOURCE_EXHAUSTED past it);
- every answer, an unparsable request's too, is JSON `{"error": ...}`, as
  http_rest_api_handler.cc's MakeJsonFromStatus writes it;
- `stop(grace)` stops accepting, closes idle keep-alive connections at once, lets
  requests in flight finish within `grace` seconds and cuts the rest.
"""

import asyncio
import concurrent.futures
import http
import json
import logging
import threading

from aiohttp import web, web_protocol, web_server
from aiohttp.http_exceptions import HttpProcessingError

from keras_bert_impl.serving import status

logger = logging.getLogger("kbi-serve")

# TF Serving's gRPC limit (int32 max); REST bodies are bounded the same way.
MAX_BODY_BYTES = 2**31 - 1
KEEPALIVE_TIMEOUT = 75.0
_CHUNK = 1 << 20


def _json_response(code, document, close=False):
    response = web.Response(
        status=code,
        body=json.dumps(document).encode("utf-8"),
        content_type="application/json",
    )
    if close:
        response.force_close()
    return response


class _JsonErrorRequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler, answering requests it cannot parse in JSON."""

    def handle_error(self, request, status=500, exc=None, message=None):
        logger.debug("REST request not parsed: %s", exc or message)
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot answer the error")
        phrase = http.HTTPStatus(status).phrase
        return _json_response(status, {"error": f"{phrase}: {message or exc}"}, close=True)


class _Server(web_server.Server):
    def __call__(self):
        return _JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class RestServer:
    """Serves `rest_api.handle(method, path, body)` over HTTP/1.1 on `host:port`.

    Args:
        rest_api: a `RestApi`.
        host, port: where to listen (port 0: a free one; `port` holds it once started).
        num_threads: threads that run requests.
        timeout_in_ms: deadline of reading a body and of answering (<= 0: none).
        max_body_bytes: the largest body accepted.
        keepalive_timeout: seconds an idle connection stays open.
    """

    def __init__(
        self,
        rest_api,
        host,
        port,
        num_threads,
        timeout_in_ms=30000,
        max_body_bytes=MAX_BODY_BYTES,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
    ):
        self.rest_api = rest_api
        self.host = host
        self.port = port
        self.timeout = timeout_in_ms / 1000 if timeout_in_ms > 0 else None
        self.max_body_bytes = max_body_bytes
        self._keepalive_timeout = keepalive_timeout
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=num_threads, thread_name_prefix="kbi-rest"
        )
        self._loop = asyncio.new_event_loop()
        self._thread = None
        self._server = None
        self._listener = None

    # ------------------------------------------------------------ lifecycle

    def start(self):
        """Binds and serves on a thread; OSError naming the port when it cannot bind."""
        ready = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="kbi-rest-loop", daemon=True
        )
        self._thread.start()
        self.port = ready.result()
        return self

    def _run(self, ready):
        asyncio.set_event_loop(self._loop)
        try:
            port = self._loop.run_until_complete(self._listen())
        except OSError as error:
            ready.set_exception(
                OSError(
                    f"Failed to start HTTP Server: --rest_api_port={self.port}: cannot bind "
                    f"{self.host}:{self.port}: {error.strerror or error}"
                )
            )
            self._loop.close()
            return
        ready.set_result(port)
        self._loop.run_forever()
        self._loop.close()

    async def _listen(self):
        self._server = _Server(
            self._handle,
            handler_cancellation=True,
            keepalive_timeout=self._keepalive_timeout,
            access_log=None,
        )
        self._listener = await self._loop.create_server(
            self._server, self.host, self.port, reuse_address=True, reuse_port=False
        )
        return self._listener.sockets[0].getsockname()[1]

    def stop(self, grace):
        """Stops accepting, waits up to `grace` s for requests in flight, closes the rest."""
        if self._thread is None or not self._thread.is_alive():
            return
        done = asyncio.run_coroutine_threadsafe(self._shutdown(grace), self._loop)
        try:
            done.result(timeout=grace + 5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            # Work already cut off answers no one: drop what has not started.
            self._pool.shutdown(wait=False, cancel_futures=True)

    def stop_async(self, grace):
        """`stop(grace)` on a thread of its own (to run beside gRPC's grace); join it."""
        thread = threading.Thread(target=self.stop, args=(grace,), name="kbi-rest-stop")
        thread.start()
        return thread

    async def _shutdown(self, grace):
        self._listener.close()
        for connection in list(self._server.connections):
            connection.close()  # idle ones close now, busy ones after their answer
        try:
            await asyncio.wait_for(self._server.shutdown(grace), grace)
        except asyncio.TimeoutError:
            # Past the grace the connections still busy are cut: the process exits
            # without waiting for their answers, as TF Serving does.
            return
        for connection in list(self._server.connections):
            connection.force_close()

    # ------------------------------------------------------------ requests

    async def _handle(self, request):
        try:
            body = await asyncio.wait_for(self._read_body(request), self.timeout)
        except status.ServingError as error:
            return _json_response(error.http_status, {"error": error.message}, close=True)
        except asyncio.TimeoutError:
            return _json_response(
                408,
                {"error": f"Timed out after {self.timeout:g} s reading the request body"},
                close=True,
            )
        work = self._loop.run_in_executor(
            self._pool, self.rest_api.handle, request.method, request.raw_path, body
        )
        try:
            code, document = await asyncio.wait_for(work, self.timeout)
        except asyncio.TimeoutError:
            return _json_response(
                504, {"error": f"Deadline exceeded: no answer within {self.timeout:g} s"}
            )
        return _json_response(code, document)

    async def _read_body(self, request):
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise status.ServingError(
                status.grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Request body of {length} bytes exceeds the limit of {self.max_body_bytes}",
            )
        chunks, size = [], 0
        try:
            while chunk := await request.content.read(_CHUNK):
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise status.ServingError(
                        status.grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"Request body exceeds the limit of {self.max_body_bytes} bytes",
                    )
                chunks.append(chunk)
        except (HttpProcessingError, web_protocol.RequestPayloadError) as error:
            raise status.invalid_argument(f"Malformed request body: {error}") from error
        return b"".join(chunks)
