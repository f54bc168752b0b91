"""When the worker's event loop hands a request to a thread: only once it is whole, or once a
thread should answer it at once (too large, malformed). In process, on bytes."""

from __future__ import annotations

import pytest

from project.worker import MAX_HEAD_BYTES, Progress, request_is_whole

LIMIT = 1000
HEAD = b"POST /api/update_model/x HTTP/1.1\r\nHost: h\r\n"


def chunked(*pieces: bytes, trailers: bytes = b"") -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    return HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body + b"0\r\n" + trailers + b"\r\n"


def with_length(body: bytes, declared: int | None = None) -> bytes:
    length = len(body) if declared is None else declared
    return HEAD + b"Content-Length: %d\r\n\r\n" % length + body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /api/models HTTP/1.1\r\nHost: h\r\n\r\n",
        with_length(b'{"a": 1}'),
        chunked(b'{"a"', b": 1}"),
        chunked(b"x" * 10, trailers=b"X-Checksum: 1\r\n"),
        HEAD + b"transfer-encoding: gzip, CHUNKED\r\n\r\n1\r\nx\r\n0\r\n\r\n",
    ],
)
def test_a_request_is_whole_only_at_its_last_byte(request_bytes):
    for cut in range(len(request_bytes)):
        assert not request_is_whole(request_bytes[:cut], LIMIT), request_bytes[:cut]
    assert request_is_whole(request_bytes, LIMIT)


def test_progress_across_reads_gives_the_same_answers():
    whole = chunked(*[b"ab"] * 300)
    progress = Progress()
    for cut in range(0, len(whole) + 1, 7):
        assert request_is_whole(whole[:cut], 10_000, progress) == request_is_whole(
            whole[:cut], 10_000
        )
    assert request_is_whole(whole, 10_000, progress)


def test_many_tiny_chunks_are_parsed_once_each():
    whole = chunked(*[b"x"] * 20_000)
    progress = Progress()
    positions = []
    for cut in range(65_536, len(whole) + 65_536, 65_536):
        request_is_whole(whole[:cut], 10**6, progress)
        positions.append(progress.chunk_at)
    assert positions == sorted(positions) and positions[0] > 0  # it only moves forward
    assert request_is_whole(whole, 10**6, progress)


@pytest.mark.parametrize(
    ("request_bytes", "why"),
    [
        (with_length(b"", declared=LIMIT + 1), "a body over the limit: 413 without reading it"),
        (chunked(b"x" * (LIMIT + 70_000))[:-10], "a chunked body past the limit"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nx", "a malformed chunk size"),
        (b"GET / HTTP/1.1\r\nX: " + b"x" * (MAX_HEAD_BYTES + 1), "headers too long"),
    ],
)
def test_a_request_a_thread_must_refuse_is_handed_over_at_once(request_bytes, why):
    assert request_is_whole(request_bytes, LIMIT), why
