"""moto's S3 server on 127.0.0.1 with one bucket: the tests' stand-in for any S3 store."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import boto3
from moto.server import ThreadedMotoServer


@contextlib.contextmanager
def s3_server(bucket: str, key_id: str = "x", secret: str = "x") -> Iterator[tuple[str, object]]:
    """The endpoint URL and a client on it, ``bucket`` created; the server stops on exit."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key_id,
                              aws_secret_access_key=secret)
        client.create_bucket(Bucket=bucket)
        yield url, client
    finally:
        server.stop()
