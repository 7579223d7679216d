"""An MCP client made with the reference Python SDK (`mcp` on PyPI), standing in for an agent's
harness: it starts `assent mcp` over stdio, lists the tools and makes the calls a scenario asks
for, and prints what it got as JSON lines on stdout.

    client.py SCENARIO.json

The scenario: {"server": {"command", "args", "env", "cwd"}, "calls": [CALL...],
"trace": PATH or null}. A CALL is {"tool", "arguments"} and optionally "cancel_on": a
substring of a progress message at which the call is cancelled, and "release": a file to wait
for (polled, up to 60 s) after the cancel before the session goes on, so whoever checks what the
cancel did does it while the session is still open. With "trace", every JSON-RPC message sent
and received is appended to that file, one per line, marked "->" or "<-".

Printed lines: {"tools": [...]} once, then per call {"call": N, "progress": [...messages],
"result": structuredContent or null, "text": [...text blocks], "is_error": bool,
"cancelled": bool}; a JSON-RPC error gives {"call": N, "error": message}.
"""

import json
import os
import sys
import time

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError


class Traced:
    """A stream that appends each message to the trace file as it passes."""

    def __init__(self, stream, trace, mark):
        self._stream, self._trace, self._mark = stream, trace, mark

    def _log(self, item):
        if self._trace is None:
            return
        message = getattr(item, "message", item)
        try:
            text = message.model_dump_json(by_alias=True, exclude_none=True)
        except AttributeError:
            text = repr(message)
        with open(self._trace, "a") as f:
            f.write(f"{self._mark} {text}\n")

    async def send(self, item):
        self._log(item)
        await self._stream.send(item)

    async def receive(self):
        item = await self._stream.receive()
        self._log(item)
        return item

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration

    def __getattr__(self, name):
        return getattr(self._stream, name)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self._stream.aclose()
        return False


def emit(line):
    print(json.dumps(line), flush=True)


async def wait_for_file(path):
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit(f"client.py: {path} did not appear within 60 s")
        await anyio.sleep(0.05)


async def one_call(session, n, call):
    progress = []
    outcome = {"call": n, "progress": progress, "cancelled": False}
    cancel_on = call.get("cancel_on")
    async with anyio.create_task_group() as tg:

        async def on_progress(value, total, message):
            progress.append(message)
            if cancel_on is not None and message is not None and cancel_on in message:
                tg.cancel_scope.cancel()

        async def invoke():
            try:
                result = await session.call_tool(
                    call["tool"], call.get("arguments", {}), progress_callback=on_progress
                )
            except MCPError as e:
                outcome["error"] = str(e)
                return
            outcome["result"] = result.structured_content
            outcome["text"] = [c.text for c in result.content if getattr(c, "type", "") == "text"]
            outcome["is_error"] = bool(result.is_error)

        tg.start_soon(invoke)
    if tg.cancel_scope.cancel_called:
        outcome["cancelled"] = True
        emit(outcome)
        if call.get("release"):
            await wait_for_file(call["release"])
    else:
        emit(outcome)


async def main(scenario):
    server = scenario["server"]
    params = StdioServerParameters(
        command=server["command"],
        args=server.get("args", []),
        env=server.get("env"),
        cwd=server.get("cwd"),
    )
    trace = scenario.get("trace")
    async with stdio_client(params) as (read, write):
        read, write = Traced(read, trace, "<-"), Traced(write, trace, "->")
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            emit({"tools": [t.model_dump(by_alias=True, exclude_none=True) for t in tools.tools]})
            for n, call in enumerate(scenario.get("calls", [])):
                await one_call(session, n, call)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        anyio.run(main, json.load(f))
