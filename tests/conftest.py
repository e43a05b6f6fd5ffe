import os

import pytest
import torch

# Two cores, many small models: one thread per test process keeps timings stable and tests fast.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def digits():
    from bench.data import load_dataset

    return load_dataset("digits")


def one_error_line(capsys) -> str:
    """The single stderr line a failing command must print (and no traceback)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("vib-bench: error:"), err
    assert "Traceback" not in err[0]
    return err[0]
