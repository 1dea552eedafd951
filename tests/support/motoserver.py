"""A real S3-compatible server on 127.0.0.1 (moto in server mode) for upload tests.

Started and stopped by the ``s3_server`` fixture; clients reach it only through the
standard AWS environment (endpoint, keys, region), as fleetbench's credential chain does.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

BUCKET = "fleetbench-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_s3() -> Iterator[dict[str, str]]:
    """Yield the environment that points AWS clients at a fresh local S3 with a bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        client = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL_S3"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=BUCKET)
        yield env
    finally:
        server.stop()
