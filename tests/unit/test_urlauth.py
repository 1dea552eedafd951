"""A URL's ``user:password@`` is set aside at validation and never dumped."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from fleetbench.backends.hosted_wire import HostedOptions
from fleetbench.backends.openai_options import OpenAIOptions
from fleetbench.catalog.spec import ModelSpec
from fleetbench.errors import BackendError
from fleetbench.urlauth import hide_userinfo, userinfo_secrets, with_userinfo

URL = "https://alice:s%40cret-unit-pw@proxy.example:8443/v1"
HIDDEN = "https://***@proxy.example:8443/v1"


def test_hidden_in_options_and_restored_for_the_backend() -> None:
    options = OpenAIOptions(base_url=URL)
    assert options.base_url == HIDDEN and "cret" not in options.model_dump_json()
    assert OpenAIOptions.model_validate(options.model_dump()) == options  # idempotent
    assert with_userinfo(HIDDEN) == URL
    hosted = HostedOptions(api_base=URL.replace("8443", "9443"))
    assert hosted.api_base == HIDDEN.replace("8443", "9443")
    plain = "http://127.0.0.1:8000/v1"
    assert hide_userinfo(plain) == with_userinfo(plain) == plain and hide_userinfo(None) is None


def test_a_catalogue_entry_keeps_no_credentials() -> None:
    url = URL.replace("8443", "7443")
    spec = ModelSpec(name="m", backend="openai", options={"base_url": url, "stream": False})
    assert spec.options == {"base_url": HIDDEN.replace("8443", "7443"), "stream": False}
    assert "cret" not in spec.model_dump_json()
    assert OpenAIOptions.model_validate(spec.options).base_url == spec.options["base_url"]


def test_two_passwords_for_one_address_are_refused() -> None:
    OpenAIOptions(base_url="http://bob:one@host.example/v1")
    with pytest.raises(ValidationError, match="differ only in their user:password@ part"):
        OpenAIOptions(base_url="http://bob:two@host.example/v1")


def test_credentials_that_are_not_in_this_process_are_a_clear_error() -> None:
    with pytest.raises(BackendError, match="never stored"):
        with_userinfo("http://***@never-seen.example/v1")


def test_every_echoable_form_is_a_secret() -> None:
    forms = set(userinfo_secrets(URL))
    basic = base64.b64encode(b"alice:s@cret-unit-pw").decode()
    assert {"alice:s%40cret-unit-pw", "s%40cret-unit-pw", "s@cret-unit-pw", basic} <= forms
    assert userinfo_secrets("http://host/v1") == ()
