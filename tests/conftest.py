"""Shared by every test: a private cache, so no test reads or fills the user's."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Point the cache at a fresh folder and forget the user's data folders.

    One folder for the whole run, so the embedded sample is parsed once.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        patch.delenv("MNIST_DATA_DIR", raising=False)
        patch.delenv("FASHION_MNIST_DATA_DIR", raising=False)
        yield
