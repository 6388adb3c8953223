import pytest

from harness.pulumi_mocks import use_pulumi_loop


@pytest.fixture(autouse=True)
def _pulumi_event_loop() -> None:
    use_pulumi_loop()
