"""Two endpoints shaped like Scout's, each: parse the JSON body, one pipelined Redis round trip,
a JSON answer of the same fields."""

from __future__ import annotations

import json
import random
import uuid

import redis
from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

_pool = redis.ConnectionPool(
    connection_class=redis.UnixDomainSocketConnection,
    path=settings.BENCH_REDIS_SOCKET,
    max_connections=64,
)


def _client() -> redis.Redis:
    return redis.Redis(connection_pool=_pool)


class DecideView(APIView):
    def post(self, request: Request) -> Response:
        body = request.data
        test_id = str(body["cb_model_id"])
        request_id = body.get("request_id") or uuid.uuid4().hex
        variant = random.randrange(3)
        pipe = _client().pipeline(transaction=False)
        stored = f"{variant}|{json.dumps(body.get('context'))}"
        pipe.set(f"b:{{{test_id}}}:c:{request_id}", stored, ex=86_400)
        pipe.hincrby(f"b:{{{test_id}}}:stats", f"p:{variant}", 1)
        pipe.execute()
        return Response(
            {
                "cb_model_id": test_id,
                "variant_id": variant,
                "variant_label": str(variant),
                "request_id": request_id,
                "is_global_rollout": False,
            }
        )


class RewardView(APIView):
    def post(self, request: Request, test_id: str) -> Response:
        updates = request.data["updates"]
        pipe = _client().pipeline(transaction=False)
        for entry in updates:
            pipe.hincrbyfloat(f"b:{{{test_id}}}:learn", f"s:{entry.get('variant_id')}", 1.0)
            pipe.set(f"b:{{{test_id}}}:c:{entry.get('request_id')}", "r", ex=86_400)
        pipe.execute()
        return Response(
            {
                "message": f"Test updated successfully with {len(updates)} records (0 failures).",
                "cb_model_id": test_id,
                "processed_updates": len(updates),
                "failed_updates": 0,
            }
        )
