"""Suite-wide test settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Run every test with one torch thread.

    The tests use small tensors; on a shared 2-core machine extra intra-op threads only contend
    (the Cueva-shape core test took 61 s with 2 threads against 0.8 s with one).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
