"""`trio-raft cluster`: a local cluster of real node processes on 127.0.0.1, until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import tempfile
from pathlib import Path

import trio

from raft.testing.processes import ProcessCluster

STOP_GRACE = 5.0
"""Seconds a node has to exit after SIGTERM before it is SIGKILLed."""


async def _stop(cluster: ProcessCluster) -> None:
    """SIGTERM every node (by its process), wait for it, SIGKILL any that lingers."""
    processes = []
    for node in cluster.nodes.values():
        process, node.process = node.process, None
        if process is not None:
            process.terminate()
            processes.append(process)
    for process in processes:
        with trio.move_on_after(STOP_GRACE):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def run_cluster(arguments: argparse.Namespace) -> int:
    """Start the nodes, print their addresses, wait for SIGINT or SIGTERM, stop them."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        own_directory = arguments.dir is None
        directory = Path(arguments.dir or tempfile.mkdtemp(prefix="trio-raft-"))
        directory.mkdir(parents=True, exist_ok=True)
        cluster = ProcessCluster(
            directory,
            arguments.nodes,
            tick=arguments.tick,
            election_ticks=arguments.election_ticks,
            request_timeout=arguments.request_timeout,
            http=arguments.http,
            lease_reads=arguments.lease_reads,
        )
        cluster.secret_file.write_bytes(os.urandom(32).hex().encode())
        if arguments.base_port:
            for node_id, node in cluster.nodes.items():
                node.raft_port = arguments.base_port + 2 * (node_id - 1)
                node.client_port = node.raft_port + 1
                if node.http_port is not None:
                    node.http_port = arguments.base_port + 100 + node_id - 1
        stopped_by: int | None = None
        try:
            async with trio.open_nursery() as nursery:

                async def wait_for_signal() -> None:
                    nonlocal stopped_by
                    async for signum in signals:
                        stopped_by = signum
                        nursery.cancel_scope.cancel()
                        return

                nursery.start_soon(wait_for_signal)
                await cluster.start_all()
                for node_id, node in cluster.nodes.items():
                    pid = node.process.pid if node.process is not None else None
                    http = f" http 127.0.0.1:{node.http_port}" if node.http_port else ""
                    print(
                        f"node {node_id}: raft 127.0.0.1:{node.raft_port} "
                        f"client 127.0.0.1:{node.client_port}{http} pid {pid}",
                        flush=True,
                    )
                servers = ",".join(f"127.0.0.1:{n.client_port}" for n in cluster.nodes.values())
                print(f"servers: {servers}", flush=True)
                print(f"directory: {directory}", flush=True)
                leader = await cluster.find_leader(timeout=30.0)
                print(f"leader: node {leader}", flush=True)
                print("Ctrl-C stops the cluster", flush=True)
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await _stop(cluster)
            if own_directory:
                shutil.rmtree(directory, ignore_errors=True)
        name = signal.Signals(stopped_by).name if stopped_by else "?"
        print(f"stopped ({name})", flush=True)
        return 0
