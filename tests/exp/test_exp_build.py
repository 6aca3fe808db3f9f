"""get_exp: loading by path and by name, isolation of same-named exps, errors, pickling."""
import os
import pickle
import subprocess
import sys
import textwrap

import pytest

from mmdet_lite.exp import PicoDetExp, get_exp
from mmdet_lite.utils.errors import UserError

from conftest import REPO_ROOT

PICODET_EXPS = sorted((REPO_ROOT / "exps/picodet").glob("*.py"))


def write_exp(path, body):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


def test_same_name_in_two_folders_gives_two_classes(tmp_path):
    template = """
        from mmdet_lite.exp import BaseExp

        class Exp(BaseExp):
            def __init__(self):
                super().__init__()
                self.num_classes = {n}
    """
    a = get_exp(write_exp(tmp_path / "a/my_exp.py", template.format(n=3)))
    b = get_exp(str(write_exp(tmp_path / "b/my_exp.py", template.format(n=7))))
    assert type(a) is not type(b)
    assert (a.num_classes, b.num_classes) == (3, 7)
    assert a.exp_name == b.exp_name == "my_exp"
    assert get_exp(tmp_path / "a/my_exp.py").num_classes == 3  # loading again still gives a's


def test_error_inside_exp_file_surfaces_as_itself(tmp_path):
    path = write_exp(tmp_path / "broken.py", """
        from mmdet_lite.exp import BaseExp

        raise ZeroDivisionError("broken exp file")
    """)
    with pytest.raises(ZeroDivisionError, match="broken exp file"):
        get_exp(path)
    path = write_exp(tmp_path / "broken_init.py", """
        from mmdet_lite.exp import BaseExp

        class Exp(BaseExp):
            def __init__(self):
                raise KeyError("bad field")
    """)
    with pytest.raises(KeyError, match="bad field"):
        get_exp(path)


def test_missing_file_and_missing_class(tmp_path):
    missing = tmp_path / "nope/none.py"
    with pytest.raises(UserError, match=f"exp file not found: {missing}"):
        get_exp(missing)
    path = write_exp(tmp_path / "empty.py", "x = 1\n")
    with pytest.raises(UserError, match="must define `class Exp`"):
        get_exp(path)
    with pytest.raises(UserError, match="no exp given"):
        get_exp()


def test_by_name_searches_exps():
    exp = get_exp(exp_name="picodet_s_416_coco_lcnet")
    assert isinstance(exp, PicoDetExp) and exp.exp_name == "picodet_s_416_coco_lcnet"
    assert exp.backbone["scale"] == 0.75
    with pytest.raises(UserError, match="no exp named 'picodet_zz_1'"):
        get_exp(exp_name="picodet_zz_1")


@pytest.mark.parametrize("path", PICODET_EXPS, ids=[p.stem for p in PICODET_EXPS])
def test_every_picodet_exp_loads(path):
    exp = get_exp(path)
    assert isinstance(exp, PicoDetExp) and exp.exp_name == path.stem
    assert exp.head_config()["feat_in_chan"] == exp.neck["out_channels"]


def test_file_loaded_exp_pickles_into_a_fresh_process(tmp_path):
    # Spawned workers unpickle the exp without the file's module: it must reload from the path.
    exp = get_exp(REPO_ROOT / "exps/picodet/picodet_s_416_voc2012.py")
    exp.merge(["head.nms.keep_top_k", "33", "test_size", "320,320"])
    clone = pickle.loads(pickle.dumps(exp))
    assert clone.fields() == exp.fields()
    payload = tmp_path / "exp.pkl"
    payload.write_bytes(pickle.dumps(exp))
    code = ("import pickle, sys; e = pickle.load(open(sys.argv[1], 'rb')); "
            "print(type(e).__name__, e.exp_name, e.head['nms']['keep_top_k'], e.test_size)")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    out = subprocess.run([sys.executable, "-c", code, str(payload)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Exp", "picodet_s_416_voc2012", "33", "(320,", "320)"]
