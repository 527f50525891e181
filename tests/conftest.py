import os

import pytest

from s3server import CREDENTIALS, S3Server


@pytest.fixture(scope="session")
def s3_server():
    pytest.importorskip("boto3")
    pytest.importorskip("moto")
    for k, v in CREDENTIALS.items():
        os.environ[k] = v
    server = S3Server().start()
    yield server
    server.stop()
