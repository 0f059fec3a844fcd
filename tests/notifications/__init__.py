import pytest

pytest.register_assert_rewrite("tests.notifications.contract", "tests.notifications.support")
