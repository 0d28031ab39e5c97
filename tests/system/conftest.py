"""The system tier (`make test-system`): crash, restart, outage and rollout scenarios with several processes, each
waiting out real leases, restarts or a JVM. The integration tier's process factories serve it too."""

from tests.integration.conftest import infer_env, infer_server

__all__ = ["infer_env", "infer_server"]
