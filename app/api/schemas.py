"""Request and response bodies of the REST API (documented in the OpenAPI schema)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from app import storable
from app.services.intake import MAX_COMMENT_CHARS, MAX_QUESTION_CHARS


def _utc(at: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything Lantern stores is UTC.
    return at if at.tzinfo else at.replace(tzinfo=UTC)


Timestamp = Annotated[datetime, AfterValidator(_utc)]


def _iso_only(value: Any) -> Any:
    # Lax parsing would read "0.5" as a Unix time; the schema promises an ISO 8601 date-time.
    if isinstance(value, str) and not re.match(r"\d{4}-\d\d-\d\d", value):
        raise PydanticCustomError("datetime_iso", "expected an ISO 8601 date-time")
    return value


def whole(value: Any) -> Any:
    """3.0 as 3: JSON has one kind of number, and to JSON Schema 3.0 is an integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: An integer in a strict request body: 3 or 3.0, never "3" or true.
JsonInt = Annotated[int, BeforeValidator(whole)]

#: A date-time parameter: ISO 8601 only, as the schema says.
IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only)]


# Character classes spelled out: regex engines disagree on what \s covers (U+0085...).
#: Control characters (C0, DEL, C1).
_CTRL = "\\x00-\\x1f\\x7f-\\x9f"
#: Everything Python counts as white space (str.split), plus controls and the BOM.
_BLANK = _CTRL + "\\x20\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
EMAIL = f"^[^@{_BLANK}]+@[^@{_BLANK}]+$"
#: A single-line name: no control characters, at least one visible character.
NAME = f"^[^{_CTRL}]*[^{_BLANK}][^{_CTRL}]*$"
#: Free text (a question): at least one visible character, and no NUL.
TEXT = f"^[^\\x00]*[^{_BLANK}][^\\x00]*$"


class Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


#: What every request string must match, in the schema: no NUL (``app.storable``; a lone
#: surrogate cannot be in a UTF-8 request at all).
STORABLE = "^[^\\x00]*$"


def _document_storable(schema: dict[str, Any]) -> None:
    """Put the no-NUL rule into a request model's JSON schema: on every string that has
    no pattern of its own (those that have one exclude NUL already) and on map keys."""
    free = not {"pattern", "enum", "const"} & schema.keys() and schema.get("format") != "binary"
    if schema.get("type") == "string" and free:
        schema["pattern"] = STORABLE
    if schema.get("additionalProperties") and "properties" not in schema:  # a map
        schema.setdefault("propertyNames", {"pattern": STORABLE})
    for value in schema.values():
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, dict):
                _document_storable(child)


class RequestModel(BaseModel):
    """A request body. Types are strict, as the schema says (``0`` is not ``false``,
    ``"5"`` is not ``5``), and every string in its fields, however deep, must be text
    every database can store (``app.storable``): one rule for all fields, documented in
    the schema and answered with 422. Undeclared fields are dropped, never stored."""

    model_config = ConfigDict(
        strict=True, json_schema_extra=lambda schema, _: _document_storable(schema)
    )

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if key in data:
                # A nested model checks its own declared fields, not its extras.
                nested = _holds_models(field.annotation)
                found = storable.find(data[key], (key,), into_mappings=not nested)
                if found:
                    raise PydanticCustomError("unstorable_text", storable.describe(*found))
        return data


def _holds_models(annotation: Any) -> bool:
    """Whether a field's type has a pydantic model in it (``list[Message] | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_models(arg) for arg in get_args(annotation))


# -- identity ---------------------------------------------------------------------------


class LoginIn(BaseModel):
    """Not a ``RequestModel``: an e-mail or password that no account can have (a NUL,
    say) is refused like a wrong password, with 401, not told apart with a 422."""

    model_config = ConfigDict(strict=True)

    email: str = Field(max_length=320, examples=["ada@example.com"])
    password: str = Field(max_length=1024, examples=["correct horse battery staple"])

    @model_validator(mode="before")
    @classmethod
    def _unusable_text(cls, data: Any) -> Any:
        # Emptied, it matches no account (nor any password, which has 10 characters or
        # more) and takes the same path as any wrong log-in.
        if isinstance(data, dict):
            return {k: "" if storable.find(v) else v for k, v in data.items()}
        return data


class UserOut(Model):
    id: str
    email: str
    name: str
    role: Literal["admin", "member"]
    is_active: bool
    created_at: Timestamp
    last_login_at: Timestamp | None = None


class MeOut(BaseModel):
    id: str
    email: str
    name: str
    role: Literal["admin", "member"]
    via: Literal["session", "api_key", "cli"]
    group_ids: list[str]


class UserIn(RequestModel):
    email: str = Field(max_length=320, pattern=EMAIL, examples=["grace@example.com"])
    name: str = Field(default="", max_length=200, examples=["Grace Hopper"])
    password: str | None = Field(
        default=None,
        min_length=10,
        max_length=1024,
        description="At least 10 characters; none for a user who only uses API keys.",
    )
    role: Literal["admin", "member"] = "member"


class UserPatch(RequestModel):
    name: str | None = Field(default=None, max_length=200)
    role: Literal["admin", "member"] | None = None
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=10, max_length=1024)


class GroupIn(RequestModel):
    name: str = Field(min_length=1, max_length=200, pattern=NAME, examples=["engineering"])


class GroupOut(BaseModel):
    id: str
    name: str
    member_ids: list[str]


class MembersIn(RequestModel):
    user_ids: list[str] = Field(max_length=10_000)


class ApiKeyIn(RequestModel):
    name: str = Field(
        min_length=1, max_length=200, pattern=NAME, examples=["intranet search widget"]
    )
    user_id: str | None = Field(
        default=None, description="Admins only: create the key for this user."
    )


class ApiKeyOut(Model):
    id: str
    user_id: str
    name: str
    prefix: str
    created_at: Timestamp
    last_used_at: Timestamp | None = None
    revoked_at: Timestamp | None = None


class NewApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    key: str = Field(description="The key itself. It is shown only this once.")


# -- collections and documents ----------------------------------------------------------


class CollectionIn(RequestModel):
    name: str = Field(min_length=1, max_length=200, pattern=NAME, examples=["HR policies"])
    description: str = Field(default="", max_length=2000)


class CollectionPatch(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NAME)
    description: str | None = Field(default=None, max_length=2000)


class GrantOut(BaseModel):
    group_id: str
    group_name: str
    access: Literal["read", "write"]


class CollectionOut(BaseModel):
    id: str
    name: str
    description: str
    created_at: Timestamp
    documents: int
    access: Literal["read", "write"] = Field(description="What the caller may do with it.")


class GrantsIn(RequestModel):
    grants: dict[str, Literal["read", "write"]] = Field(
        description="Group id to access; replaces the collection's grants.",
        examples=[{"3f2a...": "read"}],
    )


class DocumentOut(BaseModel):
    id: str
    collection_id: str
    name: str
    mime: str
    size: int
    version: int
    status: Literal["queued", "processing", "ready", "failed"]
    error: str | None
    title: str | None
    page_count: int
    chunk_count: int
    created_at: Timestamp
    indexed_at: Timestamp | None
    job_id: str | None = None
    stage: str | None = Field(default=None, description="parse, chunk, embed, index, ...")
    progress: float = Field(default=0.0, description="0 to 1 within the current job.")
    eta_s: float | None = Field(default=None, description="Seconds left, estimated.")
    timings: dict[str, Any] = Field(default_factory=dict, description="Seconds per stage.")
    parent_id: str | None = Field(
        default=None,
        description="The e-mail this document was attached to (deleting the mail deletes it).",
    )


class UploadOut(BaseModel):
    name: str
    document_id: str
    job_id: str | None
    outcome: Literal["queued", "new_version", "duplicate", "requeued", "rejected"]
    reason: str | None = None


# -- search and chat --------------------------------------------------------------------


class SearchIn(RequestModel):
    query: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        pattern=TEXT,
        examples=["vacation carry over"],
    )
    k: JsonInt = Field(default=8, ge=1, le=50)
    collection_ids: list[str] | None = Field(
        default=None, description="Search these (each must be readable); default: all readable."
    )


class SearchHitOut(BaseModel):
    chunk_id: str
    document_id: str
    document_name: str
    collection: str = Field(description="The collection's name.")
    title: str | None
    page: int | None
    text: str
    score: float
    ocr: bool = Field(default=False, description="The text was read by OCR from an image.")


class ChatIn(RequestModel):
    title: str = Field(default="", max_length=200)
    collection_ids: list[str] = Field(
        default_factory=list, description="Collections to search; empty: all readable."
    )


class ChatPatch(RequestModel):
    title: str | None = Field(default=None, min_length=1, max_length=200, pattern=NAME)
    collection_ids: list[str] | None = None


class ChatOut(Model):
    id: str
    title: str
    collection_ids: list[str]
    created_at: Timestamp
    updated_at: Timestamp


class CitationOut(BaseModel):
    n: int
    chunk_id: str
    document_id: str
    title: str
    page: int | None
    quote: str = Field(description="Verbatim text of the source.")
    char_start: int
    char_end: int
    score: float
    exact: bool
    origin: Literal["chunk", "page"]
    ocr: bool = Field(
        default=False, description="The quote was read by OCR from an image of its page."
    )


class MessageOut(Model):
    id: str
    seq: int
    role: Literal["user", "assistant"]
    content: str
    citations: list[CitationOut] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)
    created_at: Timestamp


class AskIn(RequestModel):
    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        pattern=TEXT,
        examples=["How many vacation days do I get?"],
    )
    stream: bool = Field(
        default=False,
        description="Answer as a server-sent event stream: token events, then one "
        "citations event, then a done event with ids and timings.",
    )


class AnswerOut(BaseModel):
    question_message_id: str
    message: MessageOut
    abstained: bool
    finish_reason: str
    notice: str | None


class TokenEvent(BaseModel):
    """``token``: a piece of the answer as it is generated."""

    text: str


class DoneEvent(BaseModel):
    """``done``: the stored answer's ids, how it ended, and its timings."""

    message_id: str
    question_message_id: str | None
    abstained: bool
    finish_reason: str
    notice: str | None
    timings: dict[str, float]


def sse_event(name: str | None, data: dict[str, Any]) -> dict[str, Any]:
    """The schema of one server-sent event: its name, and JSON data matching ``data``
    (the shape schemathesis and Open API 3.1 give an event stream's ``schema``)."""
    event: dict[str, Any] = {"type": "string", "const": name or "message"}
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": event,
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data,
            },
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
    }


def _ref(model: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model}"}


#: Each event of an answer stream (``stream: true``).
ANSWER_EVENT = {
    "oneOf": [
        sse_event("token", TokenEvent.model_json_schema()),
        sse_event("citations", {"type": "array", "items": _ref("CitationOut")}),
        sse_event("done", DoneEvent.model_json_schema()),
        sse_event("error", _ref("ErrorOut")),
    ]
}


class FeedbackIn(RequestModel):
    rating: Annotated[Literal[1, -1], BeforeValidator(whole)] = Field(
        description="1: thumbs up, -1: thumbs down."
    )
    comment: str = Field(default="", max_length=MAX_COMMENT_CHARS)


class FeedbackOut(Model):
    id: str
    message_id: str
    rating: int
    comment: str
    created_at: Timestamp


# -- audit and health -------------------------------------------------------------------


class AuditOut(Model):
    id: str
    at: Timestamp
    actor_id: str | None
    via: str
    action: str
    target_type: str | None
    target_id: str | None
    outcome: str
    ip: str | None
    details: dict[str, Any]


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    embedding_model: str
    embedding_fallback: bool
    chat_backend: str
    queue_depth: int
    warnings: list[str]


# -- errors -----------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["no collection 3f2a..."])


class ErrorOut(BaseModel):
    """Every error response has this body."""

    error: ErrorDetail


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


#: Documented on every API route: the errors any of them can answer with.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("The request cannot be carried out as given."),
    401: _error("Not logged in, or the API key is invalid or revoked."),
    403: _error("Logged in, but not allowed to do this."),
    404: _error("No such resource, or one the caller may not see."),
    409: _error("Conflicts with existing data (e.g. a name in use)."),
    413: _error("The request body is too large."),
    422: _error("The request body or parameters are invalid."),
    429: _error("Rate limit reached; see Retry-After."),
}
