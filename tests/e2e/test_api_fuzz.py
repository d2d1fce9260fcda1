"""A schema-driven fuzz run of the web API: every operation of its OpenAPI schema gets generated requests,
valid and invalid, and must never answer with a server error or break its own schema."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from vidsearch.serve.app import create_app

EXAMPLES = 30


def test_no_request_makes_a_server_error(ingested):
    archive, _, _ = ingested
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(archive))
    cases = 0
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            nonlocal cases
            cases += 1
            case.call_and_validate(checks=[not_a_server_error])

        run()
    print(f"{cases} generated requests over {len(operations)} operations")
    assert cases >= len(operations) * 5
