"""Run a function in one process per device (YOLOX-style launcher), or under ``torchrun``.

``launch(main_func, num_devices, ...)`` calls ``main_func(*args)`` directly when the world has a
single process; otherwise it spawns ``num_devices`` processes on this machine (start method
``spawn``), each joining a process group (gloo on CPU, NCCL on GPU) before calling ``main_func``.
Started by ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` set), it only joins the group that
torchrun describes. Inside ``main_func`` use ``mmdet_lite.utils.dist`` for the rank and world size.
"""
import datetime
import logging
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmdet_lite.utils.device import select_device
from mmdet_lite.utils.dist import set_local_rank
from mmdet_lite.utils.errors import UserError

__all__ = ["launch", "find_free_port", "launched_by_torchrun", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)


def find_free_port():
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launched_by_torchrun():
    """True when this process belongs to a multi-process ``torchrun`` job."""
    env = os.environ
    keys = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    return all(k in env for k in keys) and int(env["WORLD_SIZE"]) > 1


def _backend(device):
    return "nccl" if select_device(device).type == "cuda" else "gloo"


def launch(main_func, num_devices, device="cpu", num_machines=1, machine_rank=0, dist_url="auto",
           args=(), timeout=DEFAULT_TIMEOUT):
    """Call ``main_func(*args)`` in ``num_machines * num_devices`` processes (this machine's share).

    Args:
        main_func: a module-level function (it is pickled by name for the spawned processes).
        num_devices: processes on this machine (GPUs with ``device="gpu"``).
        device: ``"gpu"`` (NCCL, one GPU per local rank) or ``"cpu"`` (gloo).
        num_machines, machine_rank: for multi-machine jobs; ``dist_url`` then must be
            ``tcp://HOST:PORT`` of machine 0 (``"auto"`` picks a free local port on one machine).
        args: positional arguments of ``main_func`` (picklable).
    A ``UserError`` raised in any process is raised again here with its message; another failure
    becomes a ``RuntimeError`` carrying the child's traceback.
    """
    backend = _backend(device)
    if launched_by_torchrun():
        env = os.environ
        return _run_in_group(main_func, args, backend, "env://", int(env["WORLD_SIZE"]),
                             int(env["RANK"]), int(env["LOCAL_RANK"]), timeout)
    world_size = num_machines * num_devices
    if world_size <= 1:
        return main_func(*args)
    if not 0 <= machine_rank < num_machines:
        raise UserError(f"--machine_rank {machine_rank} must be in [0, {num_machines})")
    if dist_url == "auto":
        if num_machines > 1:
            raise UserError("--dist-url auto works on one machine only; give tcp://HOST:PORT of "
                            "machine 0 to every machine")
        dist_url = f"tcp://127.0.0.1:{find_free_port()}"
    errors = mp.get_context("spawn").SimpleQueue()
    # torch logs "Terminating process N via signal SIGTERM" for the ranks it stops after one
    # failed: the failure itself is reported below, as one line
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)
    context = mp.start_processes(_worker, nprocs=num_devices, join=False, start_method="spawn",
                                 args=(main_func, args, backend, dist_url, world_size,
                                       num_devices, machine_rank, timeout, errors))
    try:
        while not context.join():
            pass
    except KeyboardInterrupt:
        _stop_ranks(context.processes)
        raise
    except (mp.ProcessRaisedException, mp.ProcessExitedException) as err:
        if not errors.empty():
            raise UserError(errors.get()) from None
        raise RuntimeError(f"a worker process failed (rank {err.error_index} on this machine): "
                           f"{str(err).strip()}") from None
    return None


def _stop_ranks(processes, grace=30.0):
    """After a Ctrl-C (which the ranks received too): let them finish their own interrupt
    handling for up to ``grace`` seconds, then terminate what is left; none outlives the
    launcher."""
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
            process.join(5)


def _worker(local_rank, main_func, args, backend, dist_url, world_size, num_devices, machine_rank,
            timeout, errors):
    rank = machine_rank * num_devices + local_rank
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(world_size))
    if sys.platform.startswith("linux"):
        # A spawned process inherits "spawn" as its default start method, so every data-loader
        # worker would import torch and the package again (seconds of CPU per worker, per epoch);
        # fork them as in a single process or under torchrun.
        mp.set_start_method("fork", force=True)
    if backend == "gloo":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // num_devices))
    try:
        _run_in_group(main_func, args, backend, dist_url, world_size, rank, local_rank, timeout)
    except UserError as err:
        errors.put(str(err))
        _exit_now(2)
    _exit_now(0)


def _exit_now(code):
    """End a rank once its work is done and its process group destroyed, skipping interpreter
    teardown: there, static destructors of torch.distributed's C++ threads sometimes abort the
    process ("terminate called without an active exception", SIGABRT) after it finished."""
    from loguru import logger

    logger.remove()  # closes (flushes) the log files
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run_in_group(main_func, args, backend, init_method, world_size, rank, local_rank, timeout):
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend, init_method=init_method, world_size=world_size, rank=rank,
                            timeout=timeout)
    set_local_rank(local_rank)
    try:
        return main_func(*args)
    finally:
        dist.destroy_process_group()
