"""Shared fixtures of the IBM SDK acceptance tests: the server's URL, key and instance."""

import os

import pytest


@pytest.fixture(scope="session")
def palisade():
    """Returns (url, key, instance_id) of the server under test."""
    return os.environ["PALISADE_URL"], os.environ["PALISADE_KEY"], os.environ["PALISADE_INSTANCE_ID"]
