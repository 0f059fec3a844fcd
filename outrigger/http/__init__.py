"""The HTTP side of every service: app factory, problem responses, probes."""

from outrigger.http.app import create_app
from outrigger.http.bodies import JsonField, JsonObjectField, StrictJSONRequest, json_body
from outrigger.http.health import add_readiness_check, dependency
from outrigger.http.openapi import problem_responses
from outrigger.http.responses import JSONResponse, ProblemResponse, problem_response
from outrigger.http.routes import RequestRoute, ServiceRoute
from outrigger.http.sse import EventStream

__all__ = [
    "EventStream",
    "JSONResponse",
    "JsonField",
    "JsonObjectField",
    "ProblemResponse",
    "RequestRoute",
    "ServiceRoute",
    "StrictJSONRequest",
    "add_readiness_check",
    "create_app",
    "dependency",
    "json_body",
    "problem_response",
    "problem_responses",
]
