"""Kills and interrupts through the real ``tools/train.py`` (issue 10), PicoDet-XS on the tiny
shapes set at 96 px, one thread.

SIGKILL at five moments (start-up, during a checkpoint write twice, mid-epoch, during the final
evaluation), each followed by a restart (``--resume`` once a checkpoint exists): after every kill
``latest_ckpt.pth`` (when present) loads with ``weights_only=True``, and the run ends with weights
identical to an uninterrupted run's. SIGINT (Ctrl-C: the whole process group) during training with
two ranks and data-loader workers, and during eval: exit code 130, one closing line, the last
checkpoint intact, and no process of the tool left alive.
"""
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO_ROOT
from training_helpers import data_opts

PICODET = REPO_ROOT / "exps/picodet/picodet_xs_256_shapes.py"
NAME = PICODET.stem
EPOCHS = 3


def _command(out, data, *flags):
    return [sys.executable, str(REPO_ROOT / "tools/train.py"), "-f", str(PICODET), "--device",
            "cpu", "-b", "2", *map(str, flags), "output_dir", str(out), *data_opts(data, size=96),
            "max_epoch", str(EPOCHS), "eval_interval", "0", "snapshot_epoch", "1",
            "print_interval", "1"]


def _default_sigint():
    """A shell's background job (``nohup make test &``) ignores SIGINT, and an ignored SIGINT is
    inherited: give the tool the default action, as a terminal's foreground job has."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(cmd, **kwargs):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT),
               CUDA_VISIBLE_DEVICES="")
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_sigint, **kwargs)


def _weights(path):
    ckpt = torch.load(path, weights_only=True)
    return ckpt["model"], ckpt["train_model"], ckpt["epoch"]


def _wait_for(proc, condition, timeout=240):
    """Poll every millisecond until ``condition()`` or the process ends; True if it held."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.001)
    raise AssertionError("timed out waiting for the kill point")


def _log_has(folder, text, offset=0):
    """A condition: the train log of ``folder`` holds ``text`` after its first ``offset``
    characters."""
    def check():
        log = folder / "train_log.txt"
        return log.is_file() and text in log.read_text(errors="replace")[offset:]
    return check


def _log_size(folder):
    log = folder / "train_log.txt"
    return len(log.read_text(errors="replace")) if log.is_file() else 0


def _sleep(seconds):
    time.sleep(seconds)
    return True


@pytest.fixture(scope="module")
def reference(tmp_path_factory, shapes4):
    out = tmp_path_factory.mktemp("uninterrupted")
    proc = _start(_command(out, shapes4, "-w", 0))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return _weights(out / NAME / "latest_ckpt.pth")


def test_sigkill_at_five_moments_then_resume_gives_the_same_weights(reference, shapes4,
                                                                    tmp_path):
    run = tmp_path / NAME
    latest = run / "latest_ckpt.pth"
    tmp_file = run / "latest_ckpt.pth.tmp"
    rng = random.Random(0)
    kill_points = [  # (moment, wait(proc, log offset) -> whether to kill now)
        ("start-up", lambda p, at: _sleep(rng.uniform(0.5, 2.0))),
        ("first checkpoint write", lambda p, at: _wait_for(p, tmp_file.exists)),
        ("mid-epoch 2", lambda p, at: _wait_for(p, _log_has(run, "epoch: 2/3, iter: 1/2", at))
         and _sleep(rng.uniform(0.0, 0.5))),
        ("second checkpoint write", lambda p, at: _wait_for(p, tmp_file.exists)),
        ("final evaluation", lambda p, at: _wait_for(p, _log_has(run, "epoch 3/3 done", at))),
    ]
    killed = []
    for what, wait in kill_points:
        flags = ["-w", 0] + (["--resume"] if latest.exists() else ["--exist-ok"])
        offset = _log_size(run)
        proc = _start(_command(tmp_path, shapes4, *flags))
        if wait(proc, offset) and proc.poll() is None:
            proc.kill()
            killed.append(what)
        proc.communicate(timeout=60)
        if latest.exists():
            _weights(latest)  # always loads, whatever the moment of the kill
    assert len(killed) == 5, killed
    for _ in range(EPOCHS + 1):  # finish the run
        proc = _start(_command(tmp_path, shapes4, "-w", 0, "--resume"))
        _, err = proc.communicate(timeout=600)
        if proc.returncode == 2 and "nothing left to train" in err:
            break
        assert proc.returncode == 0, err[-3000:]
    model, train_model, epoch = _weights(latest)
    ref_model, ref_train, ref_epoch = reference
    assert epoch == ref_epoch == EPOCHS
    for got, want in ((model, ref_model), (train_model, ref_train)):
        assert got.keys() == want.keys()
        for key in want:
            assert torch.equal(got[key], want[key]), key
    assert not tmp_file.exists()


def _descendants(pid):
    """Every live process below ``pid`` (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pids):
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(pid)
        except OSError:
            pass
    return alive


def _interrupt(proc, ready):
    """Wait for ``ready()``, note the tool's processes, Ctrl-C the group; return (stderr,
    processes still alive 10 s after the tool exited)."""
    assert _wait_for(proc, ready), proc.communicate()[1][-3000:]
    tree = _descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    end = time.monotonic() + 10
    while _alive(tree) and time.monotonic() < end:
        time.sleep(0.1)
    return err, _alive(tree), tree


def test_ctrl_c_during_training_exits_cleanly_and_keeps_the_checkpoint(shapes4, tmp_path):
    run = tmp_path / NAME
    proc = _start(_command(tmp_path, shapes4, "-w", 1, "-d", 2), start_new_session=True)
    err, alive, tree = _interrupt(proc, _log_has(run, "saved latest_ckpt.pth"))
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert err.strip().splitlines()[-1] == "interrupted", err[-3000:]
    assert len(tree) >= 3  # two ranks and their workers were running
    assert not alive, f"left running: {alive}"
    assert _weights(run / "latest_ckpt.pth")[2] >= 1


def test_ctrl_c_during_eval_exits_cleanly(tmp_path, shapes4):
    from tiny_picodet import EXP_FILE, NUM_CLASSES, TSIZE, write_checkpoint

    ckpt = write_checkpoint(tmp_path / "tiny.pth")
    cmd = [sys.executable, str(REPO_ROOT / "tools/eval.py"), "-f", str(EXP_FILE), "-c", str(ckpt),
           "--device", "cpu", "--tsize", str(TSIZE), "-w", "2", "output_dir", str(tmp_path),
           *data_opts(shapes4, size=96), "val_ann", "annotations/train.json",
           "val_image_folder", "train", "num_classes", str(NUM_CLASSES)]
    proc = _start(cmd, start_new_session=True)
    err, alive, _ = _interrupt(proc, lambda: len(_descendants(proc.pid)) >= 2)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert err.strip().splitlines()[-1] == "interrupted", err[-3000:]
    assert not alive, f"left running: {alive}"
