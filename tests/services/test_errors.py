"""The one error vocabulary: request paths as the request spells them, one invalid shape
whatever found the problem, and the module's results through one table type."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bridge.at import commands as at
from bridge.services.errors import ResultCodes, ServiceError, field_path, from_validation, param
from bridge.services.http_models import HttpRequestRequest
from bridge.services.pop3 import Pop3DeleteRequest
from bridge.services.smtp_models import SmtpSendRequest


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("to", 0, "MailboxField", "address"), "to[0].address"),
        (("to", 0, "str"), "to[0]"),
        (("from", "str"), "from"),
        (("auth", "password"), "auth.password"),
        ((), "(request)"),
    ],
)
def test_smtp_paths(loc: tuple[int | str, ...], path: str) -> None:
    assert field_path(SmtpSendRequest, loc) == path


def test_dict_keys_and_list_indexes() -> None:
    assert field_path(HttpRequestRequest, ("headers", "X-A")) == "headers.X-A"
    assert field_path(Pop3DeleteRequest, ("ids", 1)) == "ids[1]"


def test_a_validation_error_in_the_invalid_shape() -> None:
    with pytest.raises(ValidationError) as caught:
        SmtpSendRequest.model_validate({"to": [{"address": 5}], "port": 0})
    error = from_validation(caught.value, SmtpSendRequest)
    fields = [e["field"] for e in error.detail["errors"]]
    assert fields == ["port", "to[0]", "to[0].address"]  # a string, or a mailbox
    first = error.detail["errors"][0]
    assert error.message == f"invalid request: port: {first['reason']}"


def test_a_refused_parameter_names_its_field_once() -> None:
    with pytest.raises(ServiceError) as caught:
        param(lambda: at.string('a"b', field="server"))
    assert caught.value.code == "invalid_request"
    assert caught.value.message == "invalid request: server: contains forbidden character '\"'"
    with pytest.raises(ServiceError) as long:
        param(lambda: at.string("x" * 200, field="user", max_len=128))
    assert (long.value.code, long.value.detail["errors"][0]["field"]) == ("too_large", "user")


def test_result_tables_map_numbers_words_and_verbose_texts() -> None:
    ftp = ResultCodes.table("ftp")
    assert ftp.failure("208").code == "ftp_login_failed"
    assert ftp.failure("Failed to login").detail == {"module_code": 208}  # AT+CMEE=2
    assert ftp.failure("999").code == "modem_error"
    pop3 = ResultCodes.table("pop3")
    assert pop3.failure("invalid  un/pwd").code == "pop3_invalid_login"
    assert pop3.failure("NEW WORD").code == "pop3_failure"  # its table's unknown
    assert ResultCodes.table("http").failure("299").code == "http_unknown_error"
    for service in ("smtp", "pop3", "ftp", "ftps", "http", "https"):
        assert ResultCodes.table(service).stable_codes
