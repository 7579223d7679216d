"""How much time `run_privileged` through `assent mcp` adds over `assent run`, both asking for a
fresh approval of `/bin/true` each time, from one process, against the same relay and approver.

    bench.py ASSENT RUNS

Prints one line per way with the median and mean wall time of a call, then the difference of
the medians. Run by the `assent-mcp-bench` program, which sets up the relay, an approver that
answers at once, and the setuid elevator.
"""

import os
import statistics
import subprocess
import sys
import time

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client


def row(name, samples):
    ms = [s * 1000 for s in samples]
    print(f"{name:<40} median {statistics.median(ms):8.1f} ms   mean {statistics.mean(ms):8.1f} ms   n={len(ms)}")
    return statistics.median(ms)


def time_cli(assent, runs):
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        r = subprocess.run([assent, "run", "--reason", "bench", "--", "/bin/true"], capture_output=True)
        samples.append(time.perf_counter() - start)
        if r.returncode != 0:
            raise SystemExit(f"bench.py: assent run failed: {r.stderr.decode()}")
    return samples


async def time_mcp(assent, runs):
    samples = []
    params = StdioServerParameters(command=assent, args=["mcp"], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await session.list_tools()
            for _ in range(runs):
                start = time.perf_counter()
                r = await session.call_tool("run_privileged", {"argv": ["/bin/true"], "reason": "bench"})
                samples.append(time.perf_counter() - start)
                if r.structured_content.get("outcome") != "ran":
                    raise SystemExit(f"bench.py: run_privileged did not run: {r.structured_content}")
    return samples


def main():
    assent, runs = sys.argv[1], int(sys.argv[2])
    time_cli(assent, 2)  # warm-up: caches, the relay's first connections
    cli = row("assent run -- /bin/true", time_cli(assent, runs))
    mcp = row("run_privileged /bin/true (assent mcp)", anyio.run(time_mcp, assent, runs))
    print(f"{'added by the MCP tool':<40} median {mcp - cli:+8.1f} ms")


if __name__ == "__main__":
    main()
