"""A schema-driven fuzz run of the web API: every operation of its OpenAPI schema gets generated requests, valid
and invalid, and ids the archive really holds; no request may make a server error, and every answer must have the
shape and media type the schema states for it."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from vidsearch.serve.app import create_app

EXAMPLES = 30
# the README's table of the API (its `{id}` is a hit id), and the export downloads that `POST /api/export` links to
DOCUMENTED = {
    ("GET", "/api/search"), ("GET", "/api/alerts"), ("GET", "/api/like/{hit_id}"), ("POST", "/api/search/image"),
    ("GET", "/api/hits/{hit_id}"), ("GET", "/api/subtitles/{hit_id}.vtt"), ("GET", "/api/thumb/{hit_id}.jpg"),
    ("GET", "/api/frame/{hit_id}.jpg"), ("GET", "/api/video/{hit_id}"), ("POST", "/api/export"),
    ("GET", "/api/exports/{name}/{hit_id}/{role}"), ("POST", "/api/faces/search"), ("GET", "/api/faces/like/{face_id}"),
    ("GET", "/api/faces/groups"), ("GET", "/api/faces/groups/{group}/hits"), ("POST", "/api/faces/groups/{group}/name"),
    ("GET", "/api/faces/thumb/{face_id}.jpg"),
}
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def test_no_request_makes_a_server_error_or_breaks_the_schema(ingested):
    archive, _, _ = ingested
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(archive))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {(operation.method.upper(), operation.path) for operation in operations} == DOCUMENTED
    # ids of a frame and of a person hit: random ids almost never name one, so the 200 answers need these
    real_ids = [archive.query("a person", k=1, kind=kind)[0].item.vector_id for kind in ("frame", "person")]
    generated, seeded, answered = 0, 0, []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            nonlocal generated
            generated += 1
            answered.append(case.call_and_validate(checks=CHECKS).status_code)

        run()
        if "{hit_id}" in operation.path:
            for hit_id in real_ids:
                parameters = {"hit_id": hit_id, **({"role": "frame"} if "{role}" in operation.path else {})}
                if "{name}" in operation.path:
                    continue  # an export's files: named by the server, reached below
                response = operation.Case(path_parameters=parameters).call_and_validate(checks=CHECKS)
                answered.append(response.status_code)
                seeded += 1
    print(f"{generated} generated and {seeded} seeded requests over {len(operations)} operations")
    # hypothesis may stop early on a small input space, but every operation ran many requests
    assert generated >= len(operations) * EXAMPLES // 2
    with_ids = sum("{hit_id}" in path and "{name}" not in path for _, path in DOCUMENTED)
    assert seeded == with_ids * len(real_ids)
    assert answered.count(200) >= seeded  # the seeded ids were answered, and their answers checked
