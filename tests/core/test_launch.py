"""The launcher: a direct call for one process, gloo processes on CPU, errors from children."""
import json
import multiprocessing as mp
import os
import sys

import pytest

from mmdet_lite.core.launch import launch, launched_by_torchrun
from mmdet_lite.utils import dist
from mmdet_lite.utils.errors import UserError


def _gather_worker(out_dir):
    rank = dist.get_rank()
    gathered = dist.all_gather_object({"rank": rank, "env": os.environ["RANK"]})
    dist.synchronize()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(dict(world=dist.get_world_size(), local=dist.get_local_rank(),
                       gathered=gathered, start_method=mp.get_start_method()), f)


def _failing_worker(rank_to_fail):
    if dist.get_rank() == rank_to_fail:
        raise UserError("image file not found: missing.jpg")
    dist.synchronize()  # the other rank waits here until it is stopped


def test_single_process_is_a_direct_call():
    assert launch(lambda x: x * 2, 1, args=(21,)) == 42


def test_two_cpu_processes_gather_then_user_error_surfaces(tmp_path):
    launch(_gather_worker, 2, device="cpu", args=(str(tmp_path),))
    for rank in (0, 1):
        info = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert info["world"] == 2 and info["local"] == rank
        assert info["gathered"] == [{"rank": 0, "env": "0"}, {"rank": 1, "env": "1"}]
        # data-loader workers fork as in one process (a spawned rank would spawn them: seconds
        # of imports per worker and epoch)
        assert info["start_method"] == ("fork" if sys.platform.startswith("linux") else
                                        mp.get_start_method())
    with pytest.raises(UserError, match="^image file not found: missing.jpg$"):
        launch(_failing_worker, 2, device="cpu", args=(1,))


def test_torchrun_detection(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert not launched_by_torchrun()
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not launched_by_torchrun()
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launched_by_torchrun()


def test_multi_machine_needs_an_address():
    with pytest.raises(UserError, match="dist-url auto works on one machine only"):
        launch(_gather_worker, 1, num_machines=2, args=("unused",))


def _register_exit_marker(path):
    import atexit

    atexit.register(lambda: open(path, "w").close())
    dist.synchronize()


def test_ranks_end_without_interpreter_teardown(tmp_path):
    """Torch's distributed C++ threads can abort a finished rank during interpreter teardown; the
    ranks skip it (exit code 0, no atexit handler runs)."""
    marker = tmp_path / "teardown_ran"
    launch(_register_exit_marker, 2, device="cpu", args=(str(marker),))
    assert not marker.exists()
