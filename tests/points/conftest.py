from tests.runtime.conftest import harness, loop

__all__ = ["harness", "loop"]
