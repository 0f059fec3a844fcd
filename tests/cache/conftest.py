import pytest

pytest.register_assert_rewrite(
    "tests.cache.contract",
    "tests.cache.contract_entries",
    "tests.cache.contract_invalidation",
    "tests.cache.contract_leases",
    "tests.cache.contract_locks",
    "tests.cache.support",
)
