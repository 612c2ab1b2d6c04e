"""toolkit.execute.kernel_client: ready when the kernel answers, not after IOPub falls silent."""

from __future__ import annotations

import asyncio
import time

import pytest

from toolkit.execute import kernel_client
from toolkit.execute.kernel_client import PromptKernelClient
from toolkit.execute.papermill_run import IpcKernelManager


async def _with_kernel(body):
    km = IpcKernelManager(kernel_name="python3", transport="ipc")
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        return await body(km, kc)
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


def test_ready_as_soon_as_the_kernel_answers_and_then_it_runs_code(monkeypatch):
    # jupyter_client's own wait drains IOPub until it stays silent for a while; with the wait
    # this long, a client doing that could not be ready in time.
    monkeypatch.setattr(kernel_client, "IOPUB_WAIT", 30.0)
    outputs = []

    async def body(km, kc):
        assert isinstance(kc, PromptKernelClient)
        started = time.monotonic()
        await kc.wait_for_ready(timeout=60)
        waited = time.monotonic() - started
        reply = await kc.execute_interactive("print(6 * 7)", timeout=30, output_hook=outputs.append)
        return waited, reply

    waited, reply = asyncio.run(_with_kernel(body))
    assert waited < kernel_client.IOPUB_WAIT
    assert reply["content"]["status"] == "ok"
    streams = [m["content"]["text"] for m in outputs if m["msg_type"] == "stream"]
    assert streams == ["42\n"]


def test_a_kernel_that_dies_before_answering_is_reported():
    async def body(km, kc):
        await km.provisioner.kill()
        await km.provisioner.wait()
        with pytest.raises(RuntimeError, match="died before replying"):
            await kc.wait_for_ready(timeout=30)
        return True

    assert asyncio.run(_with_kernel(body))
