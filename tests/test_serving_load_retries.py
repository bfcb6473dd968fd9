"""Failed version loads are retried with TF Serving's semantics: LoaderHarness::Load
through util/retrier.cc's Retry() (core/loader_harness.cc) — max_num_load_retries more
tries, load_retry_interval_micros apart, cancelled once the version is no longer aspired
(AspiredVersionsManager -> BasicManager::CancelLoadServableRetry), then in error for good."""

import logging
import os
import shutil

import numpy as np
import pytest
from serving_helpers import TF_SERVING_DATA, wait_for

from keras_bert_impl.serving import Client, ModelServer, ServerOptions

VERSION = os.path.join(TF_SERVING_DATA, "saved_model_half_plus_two_2_versions", "00000123")
FAILED = "Loading servable: {name: default version: 2} failed"


def _half_written(directory):
    """A version as a copy leaves it midway: variables/ there, saved_model.pb not yet."""
    directory.mkdir()
    shutil.copytree(os.path.join(VERSION, "variables"), directory / "variables")


@pytest.fixture
def base(tmp_path):
    base = tmp_path / "model"
    base.mkdir()
    shutil.copytree(VERSION, base / "1")
    return base


def _server(base, **options):
    return ModelServer(
        ServerOptions(
            port=0, model_base_path=str(base), file_system_poll_wait_seconds=1, **options
        )
    ).start()


def _failing_once(base, caplog):
    """A server whose new version 2 has failed its first load (retries 0.3 s apart)."""
    caplog.set_level(logging.INFO, logger="kbi-serve")
    server = _server(base, load_retry_interval_micros=300_000)
    _half_written(base / "2")
    assert wait_for(lambda: FAILED in caplog.text)
    return server


def test_a_half_copied_version_loads_once_complete_and_the_old_can_go(base, caplog):
    server = _failing_once(base, caplog)
    try:
        shutil.copy(os.path.join(VERSION, "saved_model.pb"), base / "2")
        shutil.rmtree(base / "1")
        with Client(f"127.0.0.1:{server.grpc_port}", "default", max_retries=0) as client:
            assert wait_for(lambda: client.get_model_status()[0][:2] == (2, "AVAILABLE"))
            assert client.predict({"x": np.array([[2.0]], np.float32)})["y"].tolist() == [[3.0]]
    finally:
        server.stop()
    assert "Retrying of Loading servable: {name: default version: 2} retry: 1" in caplog.text
    assert "Successfully loaded servable version {name: default version: 2}" in caplog.text


def test_retries_used_up_leave_the_version_in_error_and_the_old_one_serving(base, caplog):
    caplog.set_level(logging.INFO, logger="kbi-serve")
    server = _server(base, max_num_load_retries=2, load_retry_interval_micros=-1)
    try:
        _half_written(base / "2")
        with Client(f"127.0.0.1:{server.grpc_port}", "default", max_retries=0) as client:
            assert wait_for(lambda: client.get_model_status()[0][:2] == (2, "END"))
            version, _, code, message = client.get_model_status()[0]
            assert code != "OK" and "saved_model.pb" in message
            # Given up: completing the directory later does not bring it back.
            shutil.copy(os.path.join(VERSION, "saved_model.pb"), base / "2")
            server.manager.poll()
            assert client.get_model_status()[0][:2] == (2, "END")
            assert client.predict({"x": np.array([[2.0]], np.float32)})["y"].tolist() == [[3.0]]
    finally:
        server.stop()
    log = caplog.text
    assert log.count(FAILED) == 3
    assert log.count("Retrying of Loading servable: {name: default version: 2} retry:") == 2
    assert "exhausted max_num_retries: 2" in log
    assert "Encountered an error for servable version {name: default version: 2}" in log


def test_no_retries_when_max_num_load_retries_is_zero(base, caplog):
    caplog.set_level(logging.INFO, logger="kbi-serve")
    server = _server(base, max_num_load_retries=0, load_retry_interval_micros=-1)
    try:
        _half_written(base / "2")
        assert wait_for(lambda: "exhausted max_num_retries: 0" in caplog.text)
    finally:
        server.stop()
    assert caplog.text.count(FAILED) == 1
    assert "retry:" not in caplog.text


def test_a_version_removed_while_retried_is_cancelled_and_can_come_back(base, caplog):
    server = _failing_once(base, caplog)
    try:
        shutil.rmtree(base / "2")
        assert wait_for(lambda: "was cancelled" in caplog.text)
        shutil.copytree(VERSION, base / "2")
        with Client(f"127.0.0.1:{server.grpc_port}", "default", max_retries=0) as client:
            assert wait_for(lambda: client.get_model_status()[0][:2] == (2, "AVAILABLE"))
    finally:
        server.stop()
    assert "Retrying of Loading servable: {name: default version: 2} was cancelled." in (
        caplog.text
    )


def test_stop_cancels_a_pending_retry(base, caplog):
    caplog.set_level(logging.INFO, logger="kbi-serve")
    # The default minute between retries must not hold up stopping.
    server = _server(base)
    _half_written(base / "2")
    assert wait_for(lambda: FAILED in caplog.text)
    server.stop(grace=1.0)
    assert server._poll_thread.join(timeout=30) is None and not server._poll_thread.is_alive()
    assert "was cancelled" in caplog.text
