import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _no_failed_logins_left_over():
    """Failed logins are counted per client address for a minute in the cache; an earlier test
    that guessed passwords from 127.0.0.1 must not refuse this test's logins."""
    cache.clear()
