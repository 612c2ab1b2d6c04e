"""A kernel client that is ready as soon as the kernel is, not 0.2-0.4 s later.

jupyter_client's ``wait_for_ready`` sends ``kernel_info`` and, after the reply, waits up to
0.2 s for any IOPub message to prove IOPub is connected (one missed while the subscription was
still joining costs another round), then drains IOPub until it stays silent for 0.2 s. Every
run paid ~0.4 s of idle waiting per kernel, most of a forked kernel's start-up.

:class:`PromptKernelClient` asks the same question but waits for the one message that answers
it: the ``idle`` status the kernel publishes on IOPub after handling our ``kernel_info``. Once
that arrives IOPub is connected and nothing of the request is left to drain. A kernel that
says IOPub has just connected (ipykernel 7's ``iopub_welcome``) is asked once more at once:
the status of a request it handled before may have gone to nobody.
"""

from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient

__all__ = ["PromptKernelClient", "IOPUB_WAIT"]

IOPUB_WAIT = 0.2  # seconds for the next IOPub message before asking the kernel again (as jupyter_client)


class PromptKernelClient(AsyncKernelClient):
    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            asked = {self.kernel_info()}
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply" and await self._idle_after(asked):
                self._handle_kernel_info_reply(reply)  # the protocol version, as jupyter_client does
                return
            if not await self.is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

    async def _idle_after(self, asked: set[str]) -> bool:
        """True once IOPub carries the kernel's ``idle`` for one of the ``asked`` requests; False
        if IOPub falls silent first (still connecting: the status went to nobody)."""
        while True:
            try:
                msg = await self.iopub_channel.get_msg(timeout=IOPUB_WAIT)
            except Empty:
                return False
            if msg["msg_type"] == "iopub_welcome":
                asked.add(self.kernel_info())  # its reply on shell is skipped like any unrelated one
            elif (msg["msg_type"] == "status" and msg["parent_header"].get("msg_id") in asked
                    and msg["content"].get("execution_state") == "idle"):
                return True
