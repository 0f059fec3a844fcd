"""What the OpenAPI document promises, kept: one route per operation, every error status
documented as a problem, authentication before the body, numbers bounded where they enter,
and requests at the edges of the schema accepted."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from urllib.parse import quote

from services.cache.api import entries
from services.cache.domain import MAX_BATCH_KEYS, MAX_FENCE, MAX_KEY_LENGTH, MAX_TAGS
from tests.cache.http_support import PROBLEM, CacheApi, Service

ENTRY = "/v1/cache/{namespace}/{key}"
EVERY_ROUTE = {"401", "403", "422", "503"}
ALSO = {
    ("get", ENTRY): {"404"},
    ("put", ENTRY): {"409", "412", "413"},
    ("delete", ENTRY): {"404", "412"},
    ("post", "/v1/cache/{namespace}:mget"): {"400", "413"},
    ("post", "/v1/cache/{namespace}:mset"): {"400", "413"},
    ("post", "/v1/cache/{namespace}:invalidate"): {"400", "413"},
    ("post", "/v1/locks/{resource}"): {"400", "409", "413"},
    ("post", "/v1/locks/{resource}:renew"): {"400", "409", "413"},
    ("post", "/v1/locks/{resource}:validate"): {"400", "409", "413"},
    ("delete", "/v1/locks/{resource}"): {"409"},
}


class TestTheDocumentedApi(CacheApi):
    async def test_every_error_an_operation_answers_is_documented_as_a_problem(
        self, service: Service
    ) -> None:
        document = (await service.http.get("/openapi.json")).json()
        operations = {
            (method, path): operation
            for path, methods in document["paths"].items()
            for method, operation in methods.items()
        }
        assert set(operations) == set(ALSO)
        for (method, path), operation in operations.items():
            responses = operation["responses"]
            assert EVERY_ROUTE | ALSO[(method, path)] <= set(responses), (method, path)
            for status, response in responses.items():
                if int(status) >= 400:
                    assert list(response["content"]) == [PROBLEM], (method, path, status)
                    schema = response["content"][PROBLEM]["schema"]["$ref"]
                    assert schema.rsplit("/", 1)[1] in {"Problem", "Miss"}
        problem = document["components"]["schemas"]["Problem"]
        assert set(problem["required"]) == {"type", "title", "status", "detail"}

    async def test_the_read_is_one_route_that_describes_itself(self, service: Service) -> None:
        reads = [
            route
            for route in service.app.router.routes
            if getattr(route, "path", None) == "/v1/cache/{namespace}/{key:path}"
        ]
        assert reads == [entries.READ]
        assert all("GET" not in getattr(route, "methods", ()) for route in entries.router.routes)
        document = (await service.http.get("/openapi.json")).json()
        read = document["paths"][ENTRY]["get"]
        parameters = {parameter["name"]: parameter for parameter in read["parameters"]}
        assert set(parameters) == {
            "namespace",
            "key",
            "fill",
            "lease_ms",
            "wait_ms",
            "If-None-Match",
        }
        assert parameters["lease_ms"]["schema"] == {
            "type": "integer",
            "minimum": 1,
            "maximum": 60_000,
            "default": 5000,
        }
        assert parameters["namespace"]["schema"]["pattern"] == "^[a-z0-9_-]{1,64}$"
        assert read["security"] == [{"bearer": ["cache:read"]}]
        assert {"200", "304"} <= set(read["responses"])

    async def test_anonymous_callers_get_401_before_anything_is_read(
        self, service: Service, ns: str
    ) -> None:
        anonymous = {"Authorization": "", "Content-Type": "application/json"}
        for method, url, body in [
            ("POST", f"/v1/cache/{ns}:mget", b"{"),
            ("POST", f"/v1/cache/{ns}:mset", b'{"entries": [{"key": "k", "value": NaN}]}'),
            ("POST", f"/v1/cache/{ns}:invalidate", b"not json"),
            ("POST", "/v1/locks/r", b"{"),
            ("POST", "/v1/locks/r:renew", b"[1, 2"),
            ("POST", "/v1/locks/bad%20name:validate", b"{"),
            ("PUT", "/v1/cache/Bad_NS/k?ttl=1e308", b"v"),
            ("GET", f"/v1/cache/{ns}/k?fill=always", b""),
            ("DELETE", "/v1/locks/r", b""),
        ]:
            response = await service.http.request(method, url, content=body, headers=anonymous)
            assert response.status_code == 401, (method, url, response.text)
            assert response.headers["content-type"] == PROBLEM

    async def test_non_finite_numbers_are_not_json_and_change_nothing(
        self, service: Service, ns: str
    ) -> None:
        json = {"Content-Type": "application/json"}
        for url, body in [
            (f"/v1/cache/{ns}:mset", '{"entries": [{"key": "k", "value": "v", "ttl": NaN}]}'),
            (f"/v1/cache/{ns}:mset", '{"entries": [{"key": "k", "value": "v", "ttl": Infinity}]}'),
            (f"/v1/cache/{ns}:mset", '{"entries": [{"key": "k", "value": "v", "swr": -Infinity}]}'),
            (f"/v1/cache/{ns}:mset", '{"entries": [{"key": "k", "value": NaN}]}'),
            (f"/v1/cache/{ns}:mget", '{"keys": [NaN]}'),
            ("/v1/locks/nan", '{"ttl_ms": NaN}'),
            ("/v1/locks/nan:validate", '{"fence": Infinity}'),
            ("/v1/locks/nan:renew", '{"token": "t", "ttl_ms": 1e400}'),
        ]:
            response = await service.http.post(url, content=body, headers=json)
            assert response.status_code == 400, (url, body, response.text)
            assert "not valid JSON" in response.json()["detail"]
            assert response.headers["content-type"] == PROBLEM
        assert (await service.http.get(f"/v1/cache/{ns}/k")).status_code == 404
        assert (await service.http.post("/v1/locks/nan", json={"ttl_ms": 1000})).status_code == 200

    async def test_numbers_beyond_their_bounds_are_a_422_everywhere_they_enter(
        self, service: Service, ns: str
    ) -> None:
        item = {"key": "k", "value": "v"}
        for method, url, params, body in [
            ("PUT", f"/v1/cache/{ns}/k", {"ttl": "1e308"}, None),
            ("PUT", f"/v1/cache/{ns}/k", {"swr": "1e308"}, None),
            ("POST", f"/v1/cache/{ns}:mset", {}, {"entries": [{**item, "ttl": 1e308}]}),
            ("POST", f"/v1/cache/{ns}:mset", {}, {"entries": [{**item, "swr": 1e308}]}),
            ("GET", f"/v1/cache/{ns}/k", {"fill": "lease", "lease_ms": "1e308"}, None),
            ("GET", f"/v1/cache/{ns}/k", {"fill": "lease", "wait_ms": str(2**64)}, None),
            ("POST", "/v1/locks/r", {}, {"ttl_ms": 2**64}),
            ("POST", "/v1/locks/r", {}, {"ttl_ms": 1000, "wait_ms": 10**30}),
            ("POST", "/v1/locks/r:renew", {}, {"token": "t", "ttl_ms": 2**63}),
            ("POST", "/v1/locks/r:validate", {}, {"fence": 2**63}),
        ]:
            response = await service.http.request(
                method, url, params=params, json=body, content=b"v" if body is None else None
            )
            assert response.status_code == 422, (method, url, params, body, response.text)
            assert response.headers["content-type"] == PROBLEM
        assert (await service.http.get(f"/v1/cache/{ns}/k")).status_code == 404

    async def test_requests_at_the_edges_of_the_schema_are_accepted(
        self, service: Service, ns: str
    ) -> None:
        key = "é" * MAX_KEY_LENGTH
        url = f"/v1/cache/{ns}/{quote(key)}"
        tags = ",".join(f"{i:02d}" + "t" * 254 for i in range(MAX_TAGS))
        stored = await service.http.put(url, params={"ttl": 3600, "swr": 0, "tags": tags})
        assert stored.status_code == 200, stored.text
        assert (await service.http.get(url)).status_code == 200
        brief = await service.http.put(f"/v1/cache/{ns}/brief", params={"ttl": 0.001})
        assert brief.json()["ttl_ms"] == 1
        lease = await service.http.get(
            f"/v1/cache/{ns}/lease", params={"fill": "lease", "lease_ms": 60_000, "wait_ms": 0}
        )
        assert lease.json()["lease"]["ttl_ms"] == 60_000
        keys = [f"k{i}" for i in range(MAX_BATCH_KEYS)]
        assert (
            await service.http.post(f"/v1/cache/{ns}:mget", json={"keys": keys})
        ).status_code == 200
        resource = "r" * 200
        lock = await service.http.post(f"/v1/locks/{resource}", json={"ttl_ms": 3_600_000})
        assert lock.status_code == 200
        latest = await service.http.post(
            f"/v1/locks/{resource}:validate", json={"fence": lock.json()["fence"]}
        )
        assert latest.status_code == 204
        never = await service.http.post(f"/v1/locks/{resource}:validate", json={"fence": MAX_FENCE})
        assert never.status_code == 409

    async def test_the_document_states_the_longest_ttl_every_namespace_accepts(
        self, make_service: Callable[..., AbstractAsyncContextManager[Service]], ns: str
    ) -> None:
        briefest = {"briefs": {"default": 1, "max": 90}}
        async with make_service(cache_namespace_ttls=briefest) as service:
            document = (await service.http.get("/openapi.json")).json()
            put = document["paths"][ENTRY]["put"]
            ttl = next(p for p in put["parameters"] if p["name"] == "ttl")["schema"]
            item = document["components"]["schemas"]["MsetItem"]["properties"]
            assert ttl["maximum"] == item["ttl"]["maximum"] == item["swr"]["maximum"] == 90
            for namespace in ("briefs", ns):
                stored = await service.http.put(
                    f"/v1/cache/{namespace}/k", params={"ttl": 90, "swr": 90}, content=b"v"
                )
                assert stored.status_code == 200, stored.text
            longer = await service.http.put(f"/v1/cache/{ns}/k", params={"ttl": 3600})
            assert longer.status_code == 200  # its namespace allows more than the document says
