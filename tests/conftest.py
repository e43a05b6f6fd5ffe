import pytest
import torch

# Tiny models: one thread is fastest for them, and it keeps timing ratios meaningful when anything
# else shares the CPU (OpenMP threads spinning on an oversubscribed CPU slow torch down ~100x).
torch.set_num_threads(1)


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
